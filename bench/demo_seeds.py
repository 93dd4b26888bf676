"""The demo over data seeds: round-0 and final server-eval accuracy, gain, centralized accuracy and the ratio.

Each seed runs `fedvlm simulate` as a user would (the demo config, configs/hospital.toml, with `data.seed` set),
then trains one LoRA centrally on the same sites' filtered training splits pooled, with as many examples and the
same schedule (`bench.federated_vs_centralized`). The README states the min-max over seeds, never a single run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.federated_vs_centralized import centralized_accuracy
from bench.runs import DEMO_CONFIG, simulate
from contract.run_config import load_config

GAIN_GOAL, RATIO_GOAL = 0.30, 0.9


def seed_figures(seed: int, out: Path) -> dict:
    """One seed's demo and centralized figures."""
    started = time.monotonic()
    rows = simulate(out, "--config", DEMO_CONFIG, "--set", f"data.seed={seed}")
    federated_seconds = time.monotonic() - started
    start, final = rows[0]["utility"]["vqa_accuracy"], [r for r in rows if r["accepted"]][-1]["utility"]["vqa_accuracy"]
    centralized, _ = centralized_accuracy(load_config(DEMO_CONFIG, [f"data.seed={seed}"]), out / "data")
    environment = json.loads((out / "environment.json").read_text())
    return {
        "seed": seed,
        "round0": start,
        "final": final,
        "gain": final - start,
        "centralized": centralized,
        "ratio": final / centralized,
        "demo_seconds": federated_seconds,
        "base_model_hash": environment["base_model_hash"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-seeds-") as tmp:
        results = [seed_figures(seed, Path(tmp) / f"seed-{seed}") for seed in args.seeds]
    table = Table(title="the demo over data seeds (server-eval vqa_accuracy)")
    for column in ("data.seed", "round 0", "last round", "gain", "centralized", "federated / centralized", "demo s"):
        table.add_column(column)
    for r in results:
        table.add_row(
            str(r["seed"]),
            f"{r['round0']:.3f}",
            f"{r['final']:.3f}",
            f"{r['gain']:+.3f}",
            f"{r['centralized']:.3f}",
            f"{r['ratio']:.3f}",
            f"{r['demo_seconds']:.0f}",
        )
    console = Console()
    console.print(table)
    console.print(f"base model weights hash: {', '.join(sorted({r['base_model_hash'][:16] for r in results}))}")
    for name, goal in (("gain", GAIN_GOAL), ("ratio", RATIO_GOAL)):
        values = [r[name] for r in results]
        verdict = "met" if min(values) >= goal else "NOT met"
        console.print(f"{name}: min {min(values):.3f} max {max(values):.3f} (goal >= {goal} on every seed: {verdict})")


if __name__ == "__main__":
    main()
