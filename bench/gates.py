"""Issue 15's gate figures: what the gates catch, what they cost, and what each adversary does when nothing does.

Every run is `fedvlm simulate` on the demo config (configs/hospital.toml) with descriptors in the data (so that a bias
can be taught and a counterfactual swap tested) and the safety, updates and contributions gates on beside the demo's
utility, bias and privacy gates:

- a clean run with the gates enforcing: the baseline accuracy, clean rounds, and the gates' share of round time;
- per adversary kind, a run with the gates enforcing in which the kind attacks in episodes of two rounds, one site
  after another (sites 1, 2, 3, starting at rounds 1, 1 + gap, 1 + 2·gap): which rounds held its update, which of
  them the global took, whether it was quarantined; the other rounds of these runs are clean rounds too;
- per adversary kind, a run with the gates warning only (every round accepted) in which site 1 attacks from round 1:
  the damage of its final adapter (bench.damage) against the clean run's;
- with --one-adversary, per adversary kind, a gated run for each episode alone: the final accuracy with one
  adversary (the runs above keep some site quarantined in most rounds).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.damage import SEX_SWAP, Damage, measure
from bench.gate_rounds import count_rounds, gate_time
from bench.runs import DEMO_CONFIG, simulate
from contract.run_config import load_config
from simulations.canaries import site_canaries

ATTACKS = {  # kind -> the rest of its [[simulation.adversary]] table
    "sign-flip": "",
    "scale": "factor = 10.0",
    "noise": "factor = 0.5",
    "label-flip": "",
    "toxic": "",
    "bias": "group = 'sex=F', factor = 4.0",  # 4x the local steps: at the demo's 50 the site learns no group's bias
    "pii-leak": "",
}
GATES = {  # the demo's, probes, per-site: name -> its table's settings beyond the defaults
    "utility": "",
    "bias": "",
    "privacy": "",
    "safety": "",
    "updates": "",
    "contributions": f"swaps = {{{', '.join(f'{word} = {other!r}' for word, other in SEX_SWAP.items())}}}",
    "leakage": "",
}


def gate_tables(*settings: str) -> tuple[str, ...]:
    """The --set overrides turning on every gate of GATES, each with these settings beside its own."""
    return tuple(f"gates.{name}={{{', '.join(filter(None, (*settings, table)))}}}" for name, table in GATES.items())


GATES_ON = ("data.descriptors=true", *gate_tables())
GATES_OFF = ("data.descriptors=true", *gate_tables("mode = 'warn'"))
QUICK = ("model.preset='tiny-test'", "data.records_per_site=24", "data.eval_records=32", "train.local_steps=3")
ATTACKER = 1  # the gates-off runs' adversary site
EPISODE_SITES = (1, 2, 3)
PROBES = 24  # server-eval images whose caption and answer each probed adapter generates
RATIO_GOAL, ACCURACY_GOAL, FALSE_REJECTIONS_GOAL, CLEAN_ROUNDS_GOAL = 0.2, 0.95, 1, 20


def episodes(kind: str, rounds: int) -> list[str]:
    """The gated run's adversary tables: two-round episodes at sites 1, 2, 3, spread over the run."""
    gap = max(2, rounds // 3)
    extra = f", {ATTACKS[kind]}" if ATTACKS[kind] else ""
    return [
        f"{{site = {site}, kind = '{kind}', from_round = {start}, until_round = {min(start + 1, rounds)}{extra}}}"
        for site, start in zip(EPISODE_SITES, range(1, rounds + 1, gap))
    ]


def attack(kind: str) -> str:
    """The gates-off run's table: site 1 attacks from round 1."""
    extra = f", {ATTACKS[kind]}" if ATTACKS[kind] else ""
    return f"{{site = {ATTACKER}, kind = '{kind}'{extra}}}"


def run(out: Path, overrides: list[str], log: Path | None = None) -> tuple[list[dict], float]:
    """One simulation's rows and wall seconds (log: its output there)."""
    started = time.monotonic()
    sets = [part for override in overrides for part in ("--set", override)]
    rows = simulate(out, "--config", DEMO_CONFIG, *sets, log=log)
    return rows, time.monotonic() - started


def gated(out: Path, base: list[str], tables: list[str], finished: bool = False, log: Path | None = None) -> dict:
    """A run with the gates enforcing (finished: already run into out): round counts, seconds, final accuracy."""
    overrides = [*base, *([f"simulation.adversary=[{', '.join(tables)}]"] if tables else [])]
    rows, seconds = (read_rows(out), None) if finished else run(out, overrides, log)
    gate_seconds, round_seconds = gate_time(rows)
    return {
        "counts": count_rounds(rows, load_config(DEMO_CONFIG, overrides).simulation.adversary),
        "final": rows[-1]["utility"]["vqa_accuracy"],
        "gate_seconds": gate_seconds,
        "round_seconds": round_seconds,
        "run_seconds": seconds,
        "rows": rows,
    }


def damage_of(out: Path, overrides: list[str], last_row: dict) -> Damage:
    """A finished run's final adapter's damage figures (the canaries: the gates-off adversary's)."""
    config = load_config(DEMO_CONFIG, overrides)
    return measure(out, config, last_row, site_canaries(config.data.seed, ATTACKER), PROBES)


def damaged(out: Path, base: list[str], kind: str) -> dict:
    """A run with the gates warning only and site ATTACKER attacking from round 1: its damage figures."""
    overrides = [*base, f"simulation.adversary=[{attack(kind)}]"]
    rows, seconds = run(out, overrides)
    return {"damage": damage_of(out, overrides, rows[-1]), "run_seconds": seconds}


def clean_rounds(clean: dict, on: dict[str, dict]) -> tuple[int, int]:
    """Clean rounds and false rejections over the clean run and the adversaries' gated runs."""
    counts = [clean["counts"].clean, *(result["counts"].clean for result in on.values())]
    return sum(len(c.rounds) for c in counts), sum(len(c.false_rejections) for c in counts)


def counts_table(on: dict[str, dict], clean_final: float) -> Table:
    """Per kind: adversarial rounds, those caught, quarantines, final accuracy against the clean run's."""
    table = Table(title="gates enforcing: rounds whose candidate held the adversary's update")
    columns = ("adversary", "episodes (site: rounds)", "adversarial rounds", "caught", "quarantined", "final / clean")
    for column in columns:
        table.add_column(column)
    for kind, result in on.items():
        found = result["counts"].episodes
        held, caught = sum(len(e.held) for e in found), sum(e.caught for e in found)
        table.add_row(
            kind,
            ", ".join(f"{e.site}: {e.from_round}-{e.until_round}" for e in found),
            str(held),
            f"{caught} ({caught / held:.0%})" if held else "-",
            ", ".join(f"{e.site} in r{e.quarantined[0]}" if e.quarantined else f"{e.site} no" for e in found),
            f"{result['final']:.3f} / {clean_final:.3f} = {result['final'] / clean_final:.3f}",
        )
    return table


def damage_table(clean: Damage, harm: dict[str, dict]) -> Table:
    """Per kind: the gates-off run's final figures beside the clean run's."""
    table = Table(title=f"gates warning only (every round accepted), site {ATTACKER} attacking from round 1")
    columns = ("adversary", "final accuracy", "sex gap", "counterfactual consistency", "unsafe rate", "PII found")
    for column in (*columns, "canaries completed", "canary rank (of 16)"):
        table.add_column(column)
    for kind, damage in [("none (clean run)", clean), *((kind, result["damage"]) for kind, result in harm.items())]:
        table.add_row(
            kind,
            f"{damage.accuracy:.3f} ({damage.accuracy - clean.accuracy:+.3f})",
            "-" if damage.sex_gap is None else f"{damage.sex_gap:.3f}",
            f"{damage.consistency:.3f}",
            f"{damage.unsafe_rate:.3f}",
            str(damage.pii_found),
            f"{damage.canaries_completed}/{damage.canaries}",
            f"{damage.canary_rank:.1f}",
        )
    return table


def read_rows(run_dir: Path) -> list[dict]:
    """A run directory's metrics rows."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summary(clean: dict, on: dict[str, dict], alone: dict[str, dict], demo: Path | None) -> dict:
    """The goals' figures: clean rounds and false rejections, gate time over round time, worst accuracy ratio (with
    the episodes run alone: the worst with one adversary too)."""
    gated_runs = {**on, **alone}
    rounds, rejected = clean_rounds(clean, gated_runs)
    runs = [clean, *gated_runs.values()]
    demo_ratio = None
    if demo is not None:
        gate_seconds, round_seconds = gate_time(read_rows(demo))
        demo_ratio = gate_seconds / round_seconds
    return {
        "gate_ratio_demo_run": demo_ratio,
        "clean_rounds": rounds,
        "false_rejections": rejected,
        "gate_ratio_clean_run": clean["gate_seconds"] / clean["round_seconds"],
        "gate_ratio_all_gated_runs": sum(r["gate_seconds"] for r in runs) / sum(r["round_seconds"] for r in runs),
        "worst_final_over_clean": min((r["final"] / clean["final"] for r in on.values()), default=None),
        "worst_final_over_clean_one_adversary": min(
            (r["final"] / clean["final"] for r in alone.values()), default=None
        ),
    }


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_summary(figures: dict, console: Console) -> None:
    """The goals' lines."""
    rounds, rejected = figures["clean_rounds"], figures["false_rejections"]
    console.print(f"clean rounds: {rounds} (goal >= {CLEAN_ROUNDS_GOAL}: {_verdict(rounds >= CLEAN_ROUNDS_GOAL)})")
    console.print(
        f"false rejections: {rejected} (goal <= {FALSE_REJECTIONS_GOAL}: {_verdict(rejected <= FALSE_REJECTIONS_GOAL)})"
    )
    for name in ("demo_run", "clean_run", "all_gated_runs"):
        ratio = figures[f"gate_ratio_{name}"]
        if ratio is None:
            continue
        console.print(
            f"gate s / round s, {name.replace('_', ' ')}: {ratio:.3f} "
            f"(goal <= {RATIO_GOAL}: {_verdict(ratio <= RATIO_GOAL)})"
        )
    for name, label in (("", "every episode"), ("_one_adversary", "one adversary")):
        worst = figures[f"worst_final_over_clean{name}"]
        if worst is not None:
            verdict = _verdict(worst >= ACCURACY_GOAL)
            console.print(f"worst final accuracy / clean, {label}: {worst:.3f} (goal >= {ACCURACY_GOAL}: {verdict})")


def write_results(out: Path, settings: list[str], clean: dict, on: dict, harm: dict, figures: dict) -> None:
    """out/results.json: every figure the tables show (the kinds run so far), and the settings of the runs."""

    def plain(result: dict) -> dict:
        figures = {key: value for key, value in result.items() if key not in ("rows", "counts", "damage")}
        if "counts" in result:
            figures["counts"] = result["counts"].as_json()
        if "damage" in result:
            figures["damage"] = asdict(result["damage"])
        return figures

    results = {
        "settings": settings,
        "summary": figures,
        "clean": plain(clean),
        "gated": {kind: plain(result) for kind, result in on.items()},
        "gates_off": {kind: plain(result) for kind, result in harm.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=list(ATTACKS), choices=list(ATTACKS))
    parser.add_argument("--rounds", type=int, help="federation.rounds of every run (default 6; --quick: 4)")
    parser.add_argument("--quick", action="store_true", help="smoke run: the tiny-test model, few records and steps")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="another override, every run")
    parser.add_argument("--clean-run", type=Path, help="a finished clean run of these settings, reused")
    parser.add_argument("--demo-run", type=Path, help="a demo run directory: its gate time over round time too")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-gates"), help="run directories and results.json")
    parser.add_argument("--one-adversary", action="store_true", help="also a gated run for each episode alone")
    args = parser.parse_args()
    rounds = args.rounds or (4 if args.quick else 6)
    sizes = [*(QUICK if args.quick else ()), f"federation.rounds={rounds}", *args.set]
    on_settings, off_settings = [*GATES_ON, *sizes], [*GATES_OFF, *sizes]
    clean_dir = args.clean_run or args.out / "clean"
    clean = gated(clean_dir, on_settings, [], finished=args.clean_run is not None)
    clean["damage"] = damage_of(clean_dir, on_settings, clean["rows"][-1])
    on: dict[str, dict] = {}
    harm: dict[str, dict] = {}
    alone: dict[str, dict] = {}
    for kind in args.kinds:  # one kind at a time, results.json rewritten after each: a cut-short bench keeps them
        tables = episodes(kind, rounds)
        on[kind] = gated(args.out / f"{kind}-gated", on_settings, tables)
        for index, table in enumerate(tables if args.one_adversary else []):
            alone[f"{kind}, episode {index + 1} alone"] = gated(
                args.out / f"{kind}-episode-{index + 1}", on_settings, [table]
            )
        harm[kind] = damaged(args.out / f"{kind}-off", off_settings, kind)
        write_results(args.out, sizes, clean, {**on, **alone}, harm, summary(clean, on, alone, args.demo_run))
    console = Console()
    console.print(counts_table({**on, **alone}, clean["final"]))
    console.print(damage_table(clean["damage"], harm))
    print_summary(summary(clean, on, alone, args.demo_run), console)


if __name__ == "__main__":
    main()
