"""Attribution's cost with many sites: aggregates judged per rejected round, by groups (the server's search from
`gates.group_testing_from` sites on) against leaving each site out in turn, and whether each finds the culprits.

The gates are modelled as a monotone test, as they behave on a poisoned update: an aggregate passes exactly when
every culprit's update is left out and at least `min_updates` remain. The search is the server's own
(`server.attribution.search_culprits`); what it finds is what `attribute` convicts, the fewest sites whose absence
passed. Culprits are drawn at random positions, the same draws for both searches.

Run: python -m bench.attribution [--draws 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics

from rich.console import Console
from rich.table import Table

from server.attribution import guarded, search_culprits

SITES = (8, 16, 32, 64, 128)
CULPRITS = (1, 2, 3)
MIN_UPDATES = 2  # federation.min_train_nodes' default


def judged_and_found(sites: tuple[str, ...], culprits: set[str], group_testing_from: int) -> tuple[int, bool]:
    """How many aggregates one search judges, and whether the fewest whose absence passed are the culprits."""
    judged: list[tuple[tuple[str, ...], bool]] = []

    def judge_once(left_out: tuple[str, ...]) -> bool:
        judged.append((left_out, culprits <= set(left_out)))
        return judged[-1][1]

    search_culprits(guarded(sites, MIN_UPDATES, judge_once), sites, MIN_UPDATES, group_testing_from)
    passing = [left_out for left_out, passed in judged if passed]
    return len(judged), bool(passing) and set(min(passing, key=len)) == culprits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="culprit draws per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    table = Table(title=f"aggregates judged per rejected round ({args.draws} culprit draws a row)")
    for column in ("sites", "culprits", "by groups: mean", "max", "found", "one at a time", "found"):
        table.add_column(column, justify="right")
    for count in SITES:
        sites = tuple(f"site-{index:03d}" for index in range(count))
        for culprit_count in CULPRITS:
            draws = [set(rng.sample(sites, culprit_count)) for _ in range(args.draws)]
            grouped = [judged_and_found(sites, culprits, group_testing_from=2) for culprits in draws]
            alone = [judged_and_found(sites, culprits, group_testing_from=count + 1) for culprits in draws]
            trials = [judged for judged, _ in grouped]
            table.add_row(
                str(count),
                str(culprit_count),
                f"{statistics.fmean(trials):.1f}",
                str(max(trials)),
                f"{sum(found for _, found in grouped) / len(draws):.0%}",
                str(alone[0][0]),
                f"{sum(found for _, found in alone) / len(draws):.0%}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
