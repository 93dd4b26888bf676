"""The run directory: config.toml, metrics.jsonl, adapter/, checkpoints/ (see ARCHITECTURE.md)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's outputs."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

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
            path.write_text(uuid.uuid4().hex, encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    def append_metrics(self, row: dict) -> None:
        """Append one round's row and flush it to disk."""
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()

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
        self.metrics.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
