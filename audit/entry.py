"""The audit log's line format: fields, kinds, canonical JSON, chain hashes, the `files` convention."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

GENESIS = "0" * 64  # the `prev` of seq 0
KINDS = ("run-start", "round", "resume", "run-end")
FIELDS = frozenset({"seq", "time", "kind", "payload", "prev"})
SIGNATURE = "signature"
SHA256_HEX_LENGTH = 64


def canonical(entry: dict) -> str:
    """The one JSON text of an entry: sorted keys, no spaces, ASCII only."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), allow_nan=False)


def line_hash(line: str) -> str:
    """SHA-256 hex of a line's exact bytes, without its newline: the next entry's `prev`."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def signed_bytes(entry: dict) -> bytes:
    """What an entry's Ed25519 signature covers: its canonical JSON without the signature field."""
    return canonical({key: value for key, value in entry.items() if key != SIGNATURE}).encode("utf-8")


def files_problem(files: object) -> str | None:
    """Why a payload's `files` is not a map of relative POSIX paths to SHA-256 hex, or None when it is."""
    if not isinstance(files, dict):
        return "files is not an object"
    for path, digest in files.items():
        parts = PurePosixPath(path).parts
        if not path or PurePosixPath(path).is_absolute() or ".." in parts or "\\" in path:
            return f"files path {path!r} is not a relative path inside the run folder"
        if not (
            isinstance(digest, str)
            and len(digest) == SHA256_HEX_LENGTH
            and all(character in "0123456789abcdef" for character in digest)
        ):
            return f"files hash of {path!r} is not a SHA-256 hex digest"
    return None
