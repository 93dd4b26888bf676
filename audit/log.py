"""The append-only, hash-chained audit log of a run: `audit.jsonl`, one canonical JSON entry a line."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.entry import GENESIS, KINDS, SIGNATURE, canonical, files_problem, line_hash, signed_bytes
from audit.errors import AuditError
from audit.verify import verify_log
from storage.durable import append_line

LOG_NAME = "audit.jsonl"


class AuditLog:
    """Appends entries to the log at path, continuing the chain of the intact log already there (if any).

    A payload records what an auditor needs to check a run and never raw data: hashes, counts, settings, ε.
    It must be JSON-native (objects with string keys, lists, strings, ints, finite floats, booleans, None):
    anything JSON would change (a tuple, an int key) is refused rather than converted. By convention
    `"files": {"<path relative to the run folder>": "<sha256 hex>"}` names files (or folders) whose hashes
    verify_files recomputes (see file_hash and folder_hash). A run-start payload carries the run's `run_id`.
    One writer at a time; lines are only ever appended, each fsync'd before append returns. A missing or empty file
    starts a new log; any other file must verify (with the public half of signing_key, if given) or AuditError.
    """

    def __init__(self, path: Path, signing_key: Ed25519PrivateKey | None = None) -> None:
        self.path = Path(path)
        self._signing_key = signing_key
        entries: list[dict] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            public_key = signing_key.public_key() if signing_key is not None else None
            entries = verify_log(self.path, public_key=public_key)
            if signing_key is None and SIGNATURE in entries[-1]:
                raise AuditError(f"{self.path}: the log is signed; continue it with its signing key")
        self._next_seq = len(entries)
        # verify_log accepts canonical lines only, so the last entry's canonical JSON is that line's exact text.
        self._head = line_hash(canonical(entries[-1])) if entries else GENESIS

    @property
    def head(self) -> str:
        """SHA-256 of the last line (GENESIS while empty): kept elsewhere, it pins the log's end."""
        return self._head

    def append(self, kind: str, payload: dict) -> dict:
        """Write the next entry (fsync'd) and return it as stored; ValueError for an unknown kind or bad payload."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit entry kind {kind!r} (known: {', '.join(KINDS)})")
        if (kind == "run-start") != (self._next_seq == 0):
            raise ValueError(f"a log starts with one run-start, and only there; {kind!r} at seq {self._next_seq}")
        _check_payload(kind, payload)
        entry = {
            "seq": self._next_seq,
            "time": datetime.now(UTC).isoformat(),
            "kind": kind,
            "payload": payload,
            "prev": self._head,
        }
        if self._signing_key is not None:
            entry[SIGNATURE] = base64.b64encode(self._signing_key.sign(signed_bytes(entry))).decode("ascii")
        line = canonical(entry)
        append_line(self.path, line)
        self._next_seq += 1
        self._head = line_hash(line)
        return json.loads(line)


def _check_payload(kind: str, payload: dict) -> None:
    """ValueError unless payload survives a JSON round trip unchanged and follows the run-start and files rules."""
    if not isinstance(payload, dict):
        raise ValueError("an audit payload is a dict")
    try:
        survives = json.loads(json.dumps(payload, allow_nan=False)) == payload
    except (TypeError, ValueError):
        survives = False
    if not survives:
        raise ValueError("an audit payload holds JSON-native values only (no tuples, non-string keys, NaN, objects)")
    if kind == "run-start" and not isinstance(payload.get("run_id"), str):
        raise ValueError("a run-start payload carries the run's run_id (a string)")
    if "files" in payload:
        problem = files_problem(payload["files"])
        if problem:
            raise ValueError(f"audit payload: {problem}")
