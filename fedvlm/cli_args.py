"""Checks of command-line arguments shared by the commands: counts, output folders, whole-or-nothing output."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contract.run_config import ConfigError


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
