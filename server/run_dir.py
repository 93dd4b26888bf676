"""The run directory and the paths of what a run writes there (README, "Run directory")."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.durable import append_line, replace_file

MARKER = ".fedvlm-run"
MARKER_TEXT = "fedvlm run directory: written by fedvlm; --overwrite may replace this folder\n"


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's outputs."""

    root: Path

    @property
    def marker(self) -> Path:
        """The file that makes this folder a fedvlm run directory (only then may --overwrite replace it)."""
        return self.root / MARKER

    def mark(self) -> None:
        """Declare the folder a run directory; called before anything else of the run is written."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.is_run():
            self.marker.write_text(MARKER_TEXT, encoding="utf-8")

    def is_run(self) -> bool:
        """Whether fedvlm wrote this folder's marker (a config.toml or metrics.jsonl alone proves nothing)."""
        try:
            return self.marker.is_file() and self.marker.read_text(encoding="utf-8") == MARKER_TEXT
        except (OSError, UnicodeDecodeError):
            return False

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def audit(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def site_state(self) -> Path:
        """Simulated sites' own state (privacy ledgers); real sites keep theirs under node-config state-path."""
        return self.root / "site-state"

    def federation_id(self) -> str:
        """This run's identity, made once and kept across resumes (sites key their privacy ledgers by it)."""
        path = self.root / "federation_id"
        if not path.is_file():
            replace_file(path, uuid.uuid4().hex)
        return path.read_text(encoding="utf-8").strip()

    def append_metrics(self, row: dict) -> None:
        """Append one round's row, fsync'd."""
        append_line(self.metrics, json.dumps(row, sort_keys=True))

    def read_metrics(self) -> list[dict]:
        """Every complete row written so far."""
        if not self.metrics.is_file():
            return []
        rows = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return rows

    def truncate_metrics(self, last_round: int) -> None:
        """Keep rows up to last_round (a crash may have left a row past the last checkpoint)."""
        rows = [row for row in self.read_metrics() if row["round"] <= last_round]
        replace_file(self.metrics, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
