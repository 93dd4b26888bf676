"""Checks of command-line arguments shared by the commands: counts, output folders, whole-or-nothing output."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contract.run_config import ConfigError
from server.run_dir import MARKER, RunDir


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (argparse then exits 2 naming the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def output_folder(path: Path, option: str) -> Path:
    """An output path that is a folder or does not exist yet (a regular file there is a usage error)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: {option} names a file, not a folder")
    return path


@contextmanager
def written_whole(out: Path) -> Iterator[Path]:
    """A staging folder beside out, renamed to out (absent or empty) on success, removed on any failure or Ctrl-C."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def clear_run_dir(out: Path, overwrite: bool) -> None:
    """Make way for a new run in out: refuse a non-empty folder unless overwrite, and never one fedvlm did not write."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"{out}: run directory exists; pass --resume to continue it or --overwrite")
    if not RunDir(out).is_run():
        raise ConfigError(f"{out}: not a fedvlm run directory (no {MARKER} written by fedvlm); refusing to delete it")
    shutil.rmtree(out)
