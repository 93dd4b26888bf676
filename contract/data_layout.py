"""A data root's layout: one folder per site (`site-<i>`) and the server's evaluation set (`server-eval`)."""

from __future__ import annotations

from pathlib import Path

SERVER_EVAL = "server-eval"


def site_folder(root: Path, index: int) -> Path:
    """The folder of site index under a data root."""
    return root / site_name(index)


def site_name(index: int) -> str:
    """A simulated site's name: site-<partition-id>."""
    return f"site-{index}"
