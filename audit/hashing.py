"""SHA-256 of a file, and of a folder (an adapter or checkpoint), for an audit entry's `files`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_hash(path: Path) -> str:
    """SHA-256 hex of the file's bytes."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _raise(error: OSError) -> None:
    raise error


def folder_hash(path: Path) -> str:
    """SHA-256 hex over the folder's files, in sorted order of their POSIX paths relative to it.

    Each file adds `relative path, NUL, its SHA-256 hex, newline`, so renaming, moving, adding or removing a file
    changes the hash. Empty subfolders do not count, and symbolic links to folders are not followed.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    files = []
    for folder, _, names in os.walk(root, onerror=_raise):
        for name in names:
            file = Path(folder) / name
            files.append((os.fsencode(file.relative_to(root).as_posix()), file))
    digest = hashlib.sha256()
    for relative, file in sorted(files):
        digest.update(relative + b"\0" + file_hash(file).encode("ascii") + b"\n")
    return digest.hexdigest()
