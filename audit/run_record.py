"""What a report reads from a run folder: metrics rows, config, environment, run id, and the audit log's verdict.

Only files an auditor holds are read (metrics.jsonl, config.toml, environment.json, federation_id, audit.jsonl);
a missing or unreadable one is noted and the rest is still read, so a crashed run can be reported.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import AuditError
from audit.log import LOG_NAME
from audit.verify import verify_files, verify_log


@dataclass(frozen=True)
class AuditStatus:
    """The log's verification: verified or not (with the message), its entries, and whether the run ended."""

    verified: bool
    message: str
    entries: tuple[dict, ...] = ()
    files_checked: int = 0

    @property
    def complete(self) -> bool:
        """Whether a verified log ends with run-end."""
        return self.verified and bool(self.entries) and self.entries[-1]["kind"] == "run-end"

    @property
    def run_start(self) -> dict:
        """The run-start entry's payload (empty when the log did not verify)."""
        return self.entries[0]["payload"] if self.entries else {}

    @property
    def signed(self) -> bool:
        """Whether every verified entry carries a signature (not checked against a key here)."""
        return bool(self.entries) and all("signature" in entry for entry in self.entries)


@dataclass(frozen=True)
class RunRecord:
    """The run folder's contents as the report uses them."""

    root: Path
    rows: list[dict]
    config: dict
    environment: dict
    run_id: str | None
    audit: AuditStatus
    problems: list[str] = field(default_factory=list)

    @property
    def last(self) -> dict:
        """The last metrics row (empty without one)."""
        return self.rows[-1] if self.rows else {}

    @property
    def last_accepted(self) -> dict:
        """The last accepted round's row: the adapter the run leaves (empty without one)."""
        return next((row for row in reversed(self.rows) if row.get("accepted")), {})

    def setting(self, section: str, key: str, default: object = None) -> object:
        """config.toml's value at section (dotted) and key, or default."""
        table: object = self.config
        for part in section.split("."):
            table = table.get(part, {}) if isinstance(table, dict) else {}
        return table.get(key, default) if isinstance(table, dict) else default


def _rows(path: Path, problems: list[str]) -> list[dict]:
    """metrics.jsonl's round rows; unreadable lines are noted in problems."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        problems.append(f"{path.name}: missing or unreadable")
        return []
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except ValueError:
            problems.append(f"{path.name}: line {number} is not JSON (skipped)")
            continue
        if isinstance(row, dict) and isinstance(row.get("round"), int):
            rows.append(row)
        else:
            problems.append(f"{path.name}: line {number} is not a round's row (skipped)")
    return rows


def _json(path: Path, problems: list[str]) -> dict:
    """A JSON object file, or {} noted in problems."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        problems.append(f"{path.name}: missing or unreadable")
        return {}
    return value if isinstance(value, dict) else {}


def _toml(path: Path, problems: list[str]) -> dict:
    """A TOML file, or {} noted in problems."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        problems.append(f"{path.name}: missing or unreadable")
        return {}


def _run_id(path: Path, problems: list[str]) -> str | None:
    """The federation_id file's run id, or None noted in problems."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        problems.append(f"{path.name}: missing or unreadable")
        return None


def audit_status(root: Path, run_id: str | None) -> AuditStatus:
    """verify_log (against the run's id) and verify_files; FAILED with the first problem, paths relative to root."""
    if run_id is None:
        return AuditStatus(False, "no federation_id: the log cannot be tied to this run")
    try:
        entries = verify_log(root / LOG_NAME, expected_run_id=run_id)
        files = verify_files(entries, root)
    except AuditError as error:
        return AuditStatus(False, str(error).replace(f"{root}/", ""))
    return AuditStatus(True, f"{len(entries)} entries, {len(files)} files checked", tuple(entries), len(files))


def load_run(root: Path) -> RunRecord:
    """Everything the report needs from the run folder at root."""
    root = Path(root)
    problems: list[str] = []
    rows = _rows(root / "metrics.jsonl", problems)
    config = _toml(root / "config.toml", problems)
    environment = _json(root / "environment.json", problems)
    run_id = _run_id(root / "federation_id", problems)
    return RunRecord(root, rows, config, environment, run_id, audit_status(root, run_id), problems)
