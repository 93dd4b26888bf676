"""Simulation-engine overhead: one round with 8 virtual sites on the Flower Simulation Engine.

overhead = (train-phase wall time - summed client compute time / concurrency) / train-phase wall time,
where concurrency = how many ClientApps Ray runs at once (CPUs / cpus_per_site). Round 1 includes
actor start-up and model loading in each actor; round 2 is the steady state. The engine's one-time
start (Ray init, before round 1) is outside both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.runs import simulate

SITES = 8


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-") as tmp:
        rows = simulate(Path(tmp) / "run", "--sites", str(SITES), "--rounds", "2", "--set", "data.records_per_site=80")
    concurrency = min(SITES, os.cpu_count() or 1)
    table = Table(title=f"simulation overhead, {SITES} virtual sites, concurrency {concurrency}")
    for column in ("round", "train-phase wall s", "client compute s (sum)", "overhead"):
        table.add_column(column)
    for row in rows[1:]:
        wall, compute = row["train_phase_seconds"], row["train"]["site_seconds"]
        table.add_row(
            str(row["round"]), f"{wall:.2f}", f"{compute:.2f}", f"{(wall - compute / concurrency) / wall:.3f}"
        )
    Console().print(table)


if __name__ == "__main__":
    main()
