"""Run `fedvlm simulate` as a user would (a subprocess) and read its metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO_CONFIG = str(CONFIGS / "hospital.toml")  # what `make demo` runs


def simulate(out: Path, *args: str, log: Path | None = None) -> list[dict]:
    """Run a simulation into out (replacing it) and return its metrics rows (log: its output there, not shown)."""
    command = [sys.executable, "-m", "fedvlm.cli", "simulate", "--out", str(out), "--overwrite", *args]
    if log is None:
        subprocess.run(command, check=True)
    else:
        with log.open("w") as output:
            subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
