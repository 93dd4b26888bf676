"""The Deployment Engine (TLS, SuperNode authentication, one process per site) beside the Simulation Engine, same
config: round wall time, and bytes on each site's wire per round beside the adapter's bytes.

Both runs happen here, one after the other. Wire bytes are counted by a relay between each SuperNode and the
SuperLink (TLS ciphertext, both directions, with the SuperNode's polling and heartbeats); the adapter bytes are the
float32 arrays one site's update carries (`bytes.up` of a round's metrics row, per site). What a site exchanges
before round 0's row (connecting, fetching the app) is shown apart.

Run: python -m bench.deploy [--rounds R] [--sites N] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.runs import simulate
from contract.run_config import load_config
from deployment.local_federation import LocalFederation
from deployment.wire import WireCount

BASE = ["data.records_per_site=60", "data.eval_records=60", "train.local_steps=20"]


def deployed(config_overrides: list[str], out: Path) -> tuple[list[dict], dict[str, list[WireCount]]]:
    """Run on a local secured federation; the metrics rows and each site's wire count at each row."""
    config = load_config(None, config_overrides)
    snapshots: dict[str, list[WireCount]] = {}
    with LocalFederation(config, out) as federation:
        federation.prepare()
        federation.start_superlink()
        for site in federation.sites:
            federation.register(site.key)
            federation.start_supernode(site)
        federation.wait_online(config.federation.sites)

        def snapshot(row: dict) -> None:
            for site in federation.sites:
                snapshots.setdefault(site.name, []).append(WireCount(site.wire.up, site.wire.down))

        federation.run_app(on_row=snapshot)
    rows = federation.run_dir.read_metrics()
    return rows, snapshots


def per_round(counts: list[WireCount]) -> list[WireCount]:
    """Bytes of rounds 1.. (between consecutive metrics rows), from cumulative counts taken at each row; what came
    before round 0's row (connecting, the app's transfer) is counts[0]."""
    return [WireCount(after.up - before.up, after.down - before.down) for before, after in zip(counts, counts[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = [*BASE, *args.set, f"federation.rounds={args.rounds}", f"federation.sites={args.sites}"]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-deploy-") as scratch:
        console.print("simulation ...")
        simulated = simulate(Path(scratch) / "sim", *[part for item in overrides for part in ("--set", item)])
        console.print("deployment (TLS, authenticated SuperNodes) ...")
        rows, snapshots = deployed(overrides, Path(scratch) / "deploy")
    sim_wall = statistics.median(row["seconds"] for row in simulated[1:])
    dep_wall = statistics.median(row["seconds"] for row in rows[1:])
    adapter = statistics.median(row["bytes"]["up"] / max(row["participants"], 1) for row in rows[1:])
    table = Table(title=f"Deployment Engine vs simulation: {args.sites} sites, {args.rounds} rounds, same config")
    for column in ("figure", "deployment", "simulation / adapter", "ratio"):
        table.add_column(column, justify="right")
    table.add_row("round wall time, median (s)", f"{dep_wall:.1f}", f"{sim_wall:.1f}", f"{dep_wall / sim_wall:.2f}")
    for name, counts in sorted(snapshots.items()):
        rounds = per_round(counts)
        up = statistics.median(count.up for count in rounds)
        down = statistics.median(count.down for count in rounds)
        table.add_row(f"{name} until round 0's row: up / down (bytes)", f"{counts[0].up} / {counts[0].down}", "", "")
        table.add_row(f"{name} up per round, median (bytes)", f"{up:.0f}", f"{adapter:.0f}", f"{up / adapter:.2f}")
        table.add_row(
            f"{name} down per round, median (bytes)", f"{down:.0f}", f"{adapter:.0f}", f"{down / adapter:.2f}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
