"""The run's audit trail: what the round loop did, as entries of the hash-chained log RUN_DIR/audit.jsonl.

Entries hold hashes, counts, settings and figures, never raw data: a round entry is the round's metrics row
(itself counts only) with the hashes of every file the run directory then holds, so `fedvlm audit verify` can
recompute them. The log is only appended to: a resume names the rounds a crash discarded.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path

from audit.hashing import file_hash, folder_hash
from audit.keys import load_private_key
from audit.log import AuditLog
from audit.settings import AuditSettings
from audit.verify import verify_log
from server.run_dir import RunDir


def _json_native(value: object) -> object:
    """value as JSON gives it back (non-finite floats become null)."""
    return json.loads(json.dumps(value), parse_constant=lambda _: None)


def code_version() -> dict[str, str]:
    """fedvlm's package version, and the git commit of its source when it runs from a checkout."""
    version = {"package": importlib.metadata.version("fedvlm")}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return version
    if commit.returncode == 0:
        version["git_commit"] = commit.stdout.strip()
    return version


class AuditTrail:
    """Appends the run's entries: run-start or resume, one per committed round, run-end."""

    def __init__(self, run_dir: RunDir, settings: AuditSettings) -> None:
        self.run_dir = run_dir
        key = load_private_key(Path(settings.signing_key)) if settings.signing_key else None
        self.log = AuditLog(run_dir.audit, key)

    def files(self, checkpoint_round: int) -> dict[str, str]:
        """Hashes of what the run directory holds after a committed round (all must still exist at the end)."""
        checkpoint = f"checkpoints/round-{checkpoint_round:04d}"
        names = ["config.toml", "environment.json", "metrics.jsonl", "adapter", "checkpoints/LATEST", checkpoint]
        paths = {name: self.run_dir.root / name for name in names}
        return {name: folder_hash(path) if path.is_dir() else file_hash(path) for name, path in paths.items()}

    def run_start(self, base_model_hash: str) -> None:
        """The run's identity: config, code, base model and environment, each by hash."""
        payload = {
            "run_id": self.run_dir.federation_id(),
            "config_sha256": file_hash(self.run_dir.config),
            "code": code_version(),
            "base_model_hash": base_model_hash,
            "environment_sha256": file_hash(self.run_dir.environment),
        }
        self.log.append("run-start", payload)

    def resume(self, from_round: int, discarded_rounds: list[int]) -> None:
        """A restart from the checkpoint of from_round; rounds recorded past it were discarded."""
        payload = {
            "from_round": from_round,
            "discarded_rounds": discarded_rounds,
            "config_sha256": file_hash(self.run_dir.config),
            "environment_sha256": file_hash(self.run_dir.environment),
            "code": code_version(),
        }
        self.log.append("resume", payload)

    def round(self, row: dict, with_files: bool = True) -> None:
        """A committed round: its metrics row and (when they are still its own) the files it left."""
        payload = {"row": _json_native(row)}
        if with_files:
            payload["files"] = self.files(row["round"])
        self.log.append("round", payload)

    def last_round(self) -> int:
        """The last round the log records (-1 before round 0)."""
        rounds = [
            entry["payload"]["row"]["round"] for entry in verify_log(self.run_dir.audit) if entry["kind"] == "round"
        ]
        return max(rounds, default=-1)

    def run_end(self, last_round: int, adapter_hash: str) -> None:
        """The run finished its planned rounds."""
        self.log.append("run-end", {"last_round": last_round, "adapter_hash": adapter_hash})
