"""The gates over data seeds: what `bench.gates` measures at one seed, repeated where the path varies most.

Per data seed, `bench.gates`' clean run (every gate enforcing) and, per adversary kind, its first episode alone (site 1
attacking in rounds 1-2). Printed: per seed, the clean rounds and false rejections over these runs, and per kind the
rounds that held the adversary's update, those caught, when it was quarantined, and its final accuracy over the clean
run's; pooled over seeds, the false rejections against the goal (at most 1 in 20 clean rounds, per seed too), the
catches, and final / clean as mean, standard deviation and minimum (goal >= 0.95).

Run: python -m bench.gate_seeds [--seeds 0-11] [--kinds label-flip sign-flip] [--rounds 12] [--jobs 2]
(a 12-round run takes about 4.5 min on 2 cores; --jobs 2 runs two at a time). Each finished run's settings and
commit are written beside it; a later call with the same --out, from a checkout of that commit without changes, reads
a finished run of the same settings instead of running it again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.gates import ACCURACY_GOAL, ATTACKS, GATES_ON, clean_rounds, episodes, gated

REPO = Path(__file__).resolve().parents[1]
ONE_IN = 20  # the goal: at most one false rejection in this many clean rounds
CLEAN = "clean"


def seed_list(text: str) -> list[int]:
    """'0-11' or '0,3,5' (or both: '0-2,7') as a sorted list of seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds.update(range(int(first), int(last or first) + 1))
    return sorted(seeds)


def planned_runs(seeds: list[int], kinds: list[str], rounds: int) -> dict[tuple[int, str], list[str]]:
    """(seed, clean or kind) -> the run's adversary tables: none, or the kind's first episode."""
    first_episode = {kind: episodes(kind, rounds)[:1] for kind in kinds}
    return {(seed, name): first_episode.get(name, []) for seed in seeds for name in [CLEAN, *kinds]}


def seed_figures(results: dict[str, dict]) -> dict:
    """One seed's figures from its runs' `gated` results (clean and each kind)."""
    clean_final = results[CLEAN]["final"]
    rounds, rejected = clean_rounds(results[CLEAN], {name: r for name, r in results.items() if name != CLEAN})
    kinds = {}
    for name, result in results.items():
        if name == CLEAN:
            continue
        (episode,) = result["counts"].episodes
        kinds[name] = {
            "held": len(episode.held),
            "caught": episode.caught,
            "quarantined": episode.quarantined,
            "final_over_clean": result["final"] / clean_final,
        }
    return {
        "clean_final": clean_final,
        "clean_rounds": rounds,
        "false_rejections": rejected,
        "false_rejection_rounds": {name: r["counts"].clean.false_rejections for name, r in results.items()},
        "kinds": kinds,
    }


def within_goal(false_rejections: int, clean_rounds: int) -> bool:
    """At most one false rejection in each ONE_IN clean rounds."""
    return false_rejections * ONE_IN <= clean_rounds


def pooled(by_seed: dict[int, dict], kinds: list[str]) -> dict:
    """The figures over every seed: false rejections, catches, final / clean spread."""
    rounds = sum(figures["clean_rounds"] for figures in by_seed.values())
    rejected = sum(figures["false_rejections"] for figures in by_seed.values())
    over = [seed for seed, f in by_seed.items() if not within_goal(f["false_rejections"], f["clean_rounds"])]
    per_kind = {}
    for kind in kinds:
        runs = [figures["kinds"][kind] for figures in by_seed.values()]
        ratios = [run["final_over_clean"] for run in runs]
        per_kind[kind] = {
            "held": sum(run["held"] for run in runs),
            "caught": sum(run["caught"] for run in runs),
            "quarantined_seeds": sum(bool(run["quarantined"]) for run in runs),
            "final_over_clean_mean": statistics.fmean(ratios),
            "final_over_clean_sd": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
            "final_over_clean_min": min(ratios),
        }
    return {"clean_rounds": rounds, "false_rejections": rejected, "seeds_over_goal": over, "kinds": per_kind}


def seeds_table(by_seed: dict[int, dict], kinds: list[str]) -> Table:
    """A row per seed: clean rounds, false rejections, and per kind caught / held, quarantine, final / clean."""
    table = Table(title="gates enforcing, per data seed: the clean run and each kind's first episode alone")
    for column in ("seed", "clean final", "false rejections / clean rounds"):
        table.add_column(column, justify="right")
    for kind in kinds:
        table.add_column(f"{kind}: caught / held, quarantined, final / clean", justify="right")
    for seed, figures in by_seed.items():
        cells = []
        for kind in kinds:
            run = figures["kinds"][kind]
            quarantined = f"r{run['quarantined'][0]}" if run["quarantined"] else "no"
            cells.append(f"{run['caught']} / {run['held']}, {quarantined}, {run['final_over_clean']:.3f}")
        rejections = f"{figures['false_rejections']} / {figures['clean_rounds']}"
        table.add_row(str(seed), f"{figures['clean_final']:.3f}", rejections, *cells)
    return table


def print_pooled(figures: dict, console: Console) -> None:
    """The goals' lines over every seed."""
    rounds, rejected, over = figures["clean_rounds"], figures["false_rejections"], figures["seeds_over_goal"]
    console.print(
        f"false rejections: {rejected} in {rounds} clean rounds (goal at most 1 in {ONE_IN}: "
        f"{'met' if within_goal(rejected, rounds) else 'NOT met'} pooled; seeds over it: {over or 'none'})"
    )
    for kind, run in figures["kinds"].items():
        met = "met" if run["caught"] == run["held"] else "NOT met"
        console.print(
            f"{kind}: caught {run['caught']} of {run['held']} rounds holding its update (goal all: {met}); "
            f"quarantined at {run['quarantined_seeds']} seeds; final / clean mean {run['final_over_clean_mean']:.3f} "
            f"(sd {run['final_over_clean_sd']:.3f}, min {run['final_over_clean_min']:.3f}; goal >= {ACCURACY_GOAL})"
        )


def source_commit() -> str | None:
    """The checkout's commit, or None when it is not a git checkout or has uncommitted changes."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=40"], capture_output=True, text=True
    )
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and not commit.endswith("-dirty") else None


def run_once(out: Path, settings: list[str], tables: list[str], commit: str | None) -> dict:
    """A gated run into out, or its finished run there when one was made by this commit with the same settings."""
    record = out.with_name(f"{out.name}.settings.json")
    wanted = {"commit": commit, "settings": settings, "adversaries": tables}
    finished = commit is not None and record.exists() and json.loads(record.read_text()) == wanted
    result = gated(out, settings, tables, finished=finished, log=out.with_name(f"{out.name}.log"))
    if not finished:
        record.write_text(json.dumps(wanted))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-11"), help="data seeds: 0-11, or 0,3,5")
    parser.add_argument("--kinds", nargs="+", default=["label-flip", "sign-flip"], choices=list(ATTACKS))
    parser.add_argument("--rounds", type=int, default=12, help="federation.rounds of every run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="another override, every run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-gate-seeds"), help="run directories, results")
    args = parser.parse_args()
    plan = planned_runs(args.seeds, args.kinds, args.rounds)
    commit = source_commit()
    results: dict[tuple[int, str], dict] = {}
    with Progress() as progress, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        task = progress.add_task("gated runs", total=len(plan))
        args.out.mkdir(parents=True, exist_ok=True)
        futures = {}
        for (seed, name), tables in plan.items():
            settings = [*GATES_ON, f"federation.rounds={args.rounds}", f"data.seed={seed}", *args.set]
            futures[pool.submit(run_once, args.out / f"seed-{seed}-{name}", settings, tables, commit)] = (seed, name)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            progress.advance(task)
    by_seed = {seed: seed_figures({name: results[seed, name] for name in [CLEAN, *args.kinds]}) for seed in args.seeds}
    figures = {"seeds": by_seed, "pooled": pooled(by_seed, args.kinds)}
    (args.out / "results.json").write_text(json.dumps(figures, indent=1))
    console = Console()
    console.print(seeds_table(by_seed, args.kinds))
    print_pooled(figures["pooled"], console)


if __name__ == "__main__":
    main()
