"""Files that survive a crash: whole replacements (temporary file, fsync, rename) and fsync'd appends."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_file(path: Path, content: str | bytes) -> None:
    """Replace path with content: written to a temporary sibling, fsync'd, renamed over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    _fsync_folder(path.parent)


def append_line(path: Path, line: str) -> None:
    """Append one line (a newline is added) and fsync it before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Replace the folder path with what write(staging) puts in a staging folder; never a half-written one."""
    staging = path.with_name(path.name + PARTIAL_SUFFIX)
    retired = path.with_name(path.name + ".old")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    for written in staging.rglob("*"):
        if written.is_file():
            with written.open("rb") as handle:
                os.fsync(handle.fileno())
    if path.exists():
        path.rename(retired)
    staging.rename(path)
    _fsync_folder(path.parent)
    shutil.rmtree(retired, ignore_errors=True)
