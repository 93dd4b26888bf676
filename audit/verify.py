"""Verify an audit log (chain, kinds, signatures, run id) and the files its entries name."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.entry import FIELDS, GENESIS, KINDS, SIGNATURE, canonical, files_problem, line_hash, signed_bytes
from audit.errors import AuditError
from audit.hashing import file_hash, folder_hash


def verify_log(
    path: Path, public_key: Ed25519PublicKey | None = None, expected_run_id: str | None = None
) -> list[dict]:
    """The log's entries, after checking every line; AuditError names the first line that fails and why.

    Each line must be the canonical JSON of an entry whose `seq` is its line number minus one and whose `prev` is
    the SHA-256 of the line before (GENESIS for the first), of a known kind; the first entry, and only it, is a
    run-start with a `run_id` (equal to expected_run_id when given). With a public key every entry must carry a
    valid signature by it. Without one, the chain pins every line but the last to the line after it: only a
    signature, or a `head` hash kept elsewhere, pins the last line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"{path}: no audit log") from None
    except OSError as error:
        raise AuditError(f"{path}: cannot read the audit log ({error.strerror or type(error).__name__})") from None
    if not data:
        raise AuditError(f"{path}: empty audit log")
    *lines, tail = data.split(b"\n")
    entries: list[dict] = []
    prev = GENESIS
    for number, raw in enumerate(lines, start=1):
        entry = _checked_entry(f"{path}: line {number}", raw, len(entries), prev, public_key, expected_run_id)
        entries.append(entry)
        prev = line_hash(raw.decode("ascii"))
    if tail:
        raise AuditError(f"{path}: line {len(lines) + 1}: truncated (the last line has no newline)")
    return entries


RUN_END_KEYS = {"last_round", "adapter_hash"}


def verify_run_end(entries: list[dict]) -> None:
    """A closing run-end must agree with the rounds it closes: no chain pins an unsigned log's last line, so its
    keys, round, adapter hash and time are checked against the entries before it. AuditError names what differs."""
    if entries and (problem := _run_end_problem(entries)):
        raise AuditError(f"line {len(entries)}: {problem}")


def _run_end_problem(entries: list[dict]) -> str | None:
    end = entries[-1]
    if end["kind"] != "run-end":
        return None
    rounds = [entry["payload"]["row"] for entry in entries if entry["kind"] == "round" and "row" in entry["payload"]]
    payload = end["payload"]
    if set(payload) != RUN_END_KEYS:
        return f"run-end holds {sorted(payload)}, not {sorted(RUN_END_KEYS)}"
    if rounds and payload["last_round"] != rounds[-1].get("round"):
        return f"run-end names round {payload['last_round']!r}, the log's last round is {rounds[-1].get('round')!r}"
    if rounds and payload["adapter_hash"] != rounds[-1].get("adapter_hash"):
        return "run-end's adapter_hash is not the last round's"
    if len(entries) > 1 and end["time"] < entries[-2]["time"]:
        return "run-end is dated before the entry it follows"
    return None


def _checked_entry(
    where: str, raw: bytes, seq: int, prev: str, public_key: Ed25519PublicKey | None, expected_run_id: str | None
) -> dict:
    """The entry on one line, or AuditError saying where and what fails."""
    try:
        text = raw.decode("ascii")
        entry = json.loads(text)
    except (ValueError, RecursionError):
        raise AuditError(f"{where}: not valid JSON") from None
    if not isinstance(entry, dict):
        raise AuditError(f"{where}: not a JSON object")
    if type(entry.get("seq")) is int:
        where = f"{where} (seq {entry['seq']})"
    missing = sorted(FIELDS - entry.keys())
    if missing:
        raise AuditError(f"{where}: missing fields {', '.join(missing)}")
    unexpected = sorted(entry.keys() - FIELDS - {SIGNATURE})
    if unexpected:
        raise AuditError(f"{where}: unexpected fields {', '.join(unexpected)}")
    if type(entry["seq"]) is not int or entry["seq"] != seq:
        raise AuditError(f"{where}: seq {entry['seq']!r} out of order (expected {seq})")
    if entry["prev"] != prev:
        before = "the genesis value" if seq == 0 else "the hash of the line before"
        raise AuditError(f"{where}: prev does not match {before}")
    problem = _content_problem(entry, expected_run_id)
    if problem:
        raise AuditError(f"{where}: {problem}")
    if canonical(entry) != text:
        raise AuditError(f"{where}: not in canonical JSON form")
    if public_key is not None:
        problem = _signature_problem(entry, public_key)
        if problem:
            raise AuditError(f"{where}: {problem}")
    return entry


def _content_problem(entry: dict, expected_run_id: str | None) -> str | None:
    """What is wrong with an entry's kind, time or payload, or None."""
    kind, payload = entry["kind"], entry["payload"]
    if kind not in KINDS:
        return f"unknown kind {kind!r}"
    if entry["seq"] == 0 and kind != "run-start":
        return f"the first entry is {kind!r}, not 'run-start'"
    if entry["seq"] > 0 and kind == "run-start":
        return "a run-start after the first entry"
    if not _is_utc_time(entry["time"]):
        return f"time {entry['time']!r} is not an ISO-8601 UTC time"
    if not isinstance(payload, dict):
        return "payload is not an object"
    if kind == "run-start":
        run_id = payload.get("run_id")
        if not isinstance(run_id, str):
            return "the run-start payload has no run_id"
        if expected_run_id is not None and run_id != expected_run_id:
            return f"run-start run_id {run_id!r} is not the expected {expected_run_id!r}"
    if "files" in payload:
        return files_problem(payload["files"])
    return None


def _is_utc_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0)


def _signature_problem(entry: dict, public_key: Ed25519PublicKey) -> str | None:
    """What is wrong with an entry's signature under public_key, or None."""
    signature = entry.get(SIGNATURE)
    if signature is None:
        return "missing signature"
    try:
        raw = base64.b64decode(signature, validate=True)
        # Base64 can spell the same bytes several ways (unused low bits); only the one canonical spelling counts.
        if base64.b64encode(raw).decode("ascii") != signature:
            raise ValueError
        public_key.verify(raw, signed_bytes(entry))
    except (TypeError, ValueError, InvalidSignature):
        return "invalid signature (the entry was altered, or signed by another key)"
    return None


def verify_files(entries: list[dict], root: Path) -> dict[str, str]:
    """Recompute the hashes that entries' `files` name under root; the checked paths with their hashes.

    Which hash counts: a path is checked against the hash of the latest entry that names it, so versions that a
    run replaced (a metrics file rewritten each round) are not checked. Which files must exist: those the last
    entry with a `files` map names. A path that only earlier entries name may be gone (a pruned round-NNNN
    checkpoint); if it is still there, it must match too. A path may name a folder (see folder_hash).
    AuditError names the first file that is missing, unreadable or changed.
    """
    root = Path(root)
    latest: dict[str, tuple[str, str]] = {}  # path -> (hash, where it was named)
    required: dict[str, str] = {}
    for index, entry in enumerate(entries):
        payload = entry.get("payload") if isinstance(entry, dict) else None
        if not isinstance(payload, dict) or "files" not in payload:
            continue
        where = f"entry {index} (seq {entry.get('seq')!r})"
        problem = files_problem(payload["files"])
        if problem:
            raise AuditError(f"{where}: {problem}")
        latest.update({path: (digest, where) for path, digest in payload["files"].items()})
        required = payload["files"]
    checked = {}
    for path, (digest, where) in sorted(latest.items()):
        target = root / path
        try:
            if not target.exists():
                if path in required:
                    raise AuditError(f"{target}: missing (named by {where})")
                continue
            actual = folder_hash(target) if target.is_dir() else file_hash(target)
        except OSError as error:
            raise AuditError(f"{target}: cannot read ({error.strerror or type(error).__name__})") from None
        if actual != digest:
            raise AuditError(f"{target}: SHA-256 differs from the hash named by {where}")
        checked[path] = actual
    return checked
