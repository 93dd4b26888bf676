"""Audit benchmark: does `fedvlm audit verify` catch a flipped byte, and does the empirical ε stay under the
accountant's while a run without DP shows a larger one?

1. Tamper: one short run with a signed audit log; for the log, the published adapter and each checkpoint file, flip
   one byte at a random position of a copy (XOR with a random non-zero value), run `fedvlm audit verify` (with the
   public key, then without), count detections (exit 1), misses (exit 0) and crashes (anything else), and check the
   untouched copy passes each time. Without a signature nothing pins the log's last line (audit/verify.py).
2. ε: the same canaries (one secret per seed) in runs with DP-SGD at ε = 1, ε = 8 and without DP; per run, the
   accountant's ε, the empirical ε lower bound at 95% (`fedvlm audit privacy`), membership AUC and exposure.

Run: python -m bench.audit [--parts tamper,epsilon] [--trials 200] [--canaries 100] [--seeds 2]
(tamper about 2 min; epsilon about 35 min for 2 seeds on 2 shared cores)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audit.canaries import draw_canaries, secret_path, write_secret
from bench.runs import simulate
from fedvlm.audit_cli import PRIVATE_KEY, PUBLIC_KEY
from fedvlm.cli import main as fedvlm

console = Console(width=140)
SMALL = ["model.preset='tiny-test'", "data.records_per_site=24", "data.eval_records=16", "train.local_steps=3"]
EPSILONS = (1.0, 8.0, None)  # None: no DP


def _sets(overrides: list[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


def _cli(*args: str) -> int:
    """Exit status of a fedvlm command run in this process (its output swallowed)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fedvlm(list(args))


def tamper_targets(run: Path) -> list[Path]:
    """The audit log, the adapter's weights and every checkpoint file."""
    checkpoints = sorted(path for path in (run / "checkpoints").rglob("*") if path.is_file())
    return [run / "audit.jsonl", run / "adapter" / "adapter_model.safetensors", *checkpoints]


def _flip_counts(copy: Path, target: Path, trials: int, rng: random.Random, verify: list[str]) -> list[str]:
    """A table row: flip one random byte of target per trial, verify, restore, verify again."""
    original = target.read_bytes()
    detected = missed = crashed = untouched = 0
    for _ in range(trials):
        changed = bytearray(original)
        changed[rng.randrange(len(original))] ^= rng.randrange(1, 256)
        target.write_bytes(bytes(changed))
        try:
            status = _cli("audit", "verify", str(copy), *verify)
        except Exception:  # a crash is a finding, not a detection
            status = -1
        detected += status == 1
        missed += status == 0
        crashed += status not in (0, 1)
        target.write_bytes(original)
        untouched += _cli("audit", "verify", str(copy), *verify) == 0
    row = [str(target.relative_to(copy)), str(len(original)), f"{detected / trials:.1%}", str(missed), str(crashed)]
    return [*row, f"{untouched}/{trials}"]


def tamper(work: Path, trials: int, seed: int) -> None:
    keys = work / "keys"
    if _cli("audit", "keygen", "--out", str(keys)) != 0:
        raise SystemExit(f"{keys}: cannot write a key pair (remove the folder)")
    run = work / "tamper-run"
    signing = f"audit.signing_key='{keys / PRIVATE_KEY}'"
    simulate(run, "--sites", "2", "--rounds", "3", *_sets([*SMALL, "train.batch_size=4", signing]))
    copy = work / "tamper-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("data"))
    rng = random.Random(seed)
    modes = {"signed log, --public-key": ["--public-key", str(keys / PUBLIC_KEY)], "no --public-key": []}
    for mode, verify in modes.items():
        table = Table(title=f"`fedvlm audit verify` ({mode}) after one flipped byte, {trials} trials per file")
        for column in ("file", "bytes", "detected", "missed", "crashed", "untouched passes"):
            table.add_column(column, justify="right")
        for target in tamper_targets(copy):
            table.add_row(*_flip_counts(copy, target, trials, rng, verify))
        console.print(table)


def _run_overrides(epsilon: float | None, args: argparse.Namespace) -> list[str]:
    """A small run that can memorize its canaries: few records, many local steps, a wide LoRA, a constant rate."""
    run = [
        "model.preset='tiny-test'",
        f"data.records_per_site={args.records}",
        "data.eval_records=16",
        f"train.local_steps={args.local_steps}",
        "train.batch_size=8",
        "train.learning_rate=0.005",  # 0.02 left the loss above 3.1: too high a rate to memorize
        "train.schedule='constant'",
        "lora.r=32",
        f"simulation.audit.canaries={args.canaries}",
        f"federation.min_train_nodes={min(2, args.sites)}",
        "gates.privacy={}",  # the privacy gate only: a round that trades accuracy for memorization is published
    ]
    if epsilon is not None:
        run += ["privacy.dp.enabled=true", f"privacy.dp.target_epsilon={epsilon}"]
    return run


def audited_run(work: Path, name: str, secret: Path, epsilon: float | None, args: argparse.Namespace) -> dict:
    """Run with the given secret's canaries, then `fedvlm audit privacy`; its figures."""
    run = work / name
    shutil.copyfile(secret, secret_path(run))
    started = time.monotonic()
    simulate(run, "--sites", str(args.sites), "--rounds", str(args.rounds), *_sets(_run_overrides(epsilon, args)))
    console.print(f"{name}: simulated in {time.monotonic() - started:.0f} s")
    status = _cli("audit", "privacy", str(run))
    figures = json.loads((run / "privacy_audit.json").read_text())
    if status != 0:
        console.print(f"[red]{name}: `fedvlm audit privacy` exited {status}[/red]")
    return figures


def _spread(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def epsilon_table(work: Path, args: argparse.Namespace) -> None:
    results: dict[float | None, list[dict]] = {epsilon: [] for epsilon in EPSILONS}
    for seed in range(args.seeds):
        secret = work / f"secret-{seed}.json"
        write_secret(secret, draw_canaries(args.canaries, args.sites, random.Random(seed), args.alternatives))
        for epsilon in EPSILONS:
            name = f"seed{seed}-eps{epsilon or 'inf'}"
            figures = audited_run(work, name, secret, epsilon, args)
            console.print(f"{name}: {json.dumps(figures)}")
            results[epsilon].append(figures)
    table = Table(
        title=f"empirical ε (95% lower bound) vs the accountant's: {args.canaries} canaries, "
        f"{args.seeds} seed(s) (mean ± sd)"
    )
    columns = ("target ε", "accountant ε", "empirical ε", "empirical / accountant", "correct / guesses", "AUC")
    for column in (*columns, "exposure in / out (bits)"):
        table.add_column(column, justify="right")
    for epsilon, runs in results.items():
        accountant = [figures["accountant_epsilon"] for figures in runs]
        bounds = [figures["epsilon_lower_bound"] for figures in runs]
        ratio = "-" if epsilon is None else _spread([b / a for b, a in zip(bounds, accountant)], 3)
        table.add_row(
            "∞ (no DP)" if epsilon is None else f"{epsilon:g}",
            "∞" if epsilon is None else _spread(accountant),
            _spread(bounds),
            ratio,
            " ".join(f"{figures['correct']}/{figures['guesses']}" for figures in runs),
            _spread([figures["auc"] for figures in runs]),
            f"{_spread([f['exposure_included'] for f in runs])} / {_spread([f['exposure_excluded'] for f in runs])}",
        )
    console.print(table)
    violations = [f for runs in results.values() for f in runs if not f["within_accountant"]]
    console.print(f"runs whose empirical ε exceeds the accountant's: {len(violations)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="tamper,epsilon")
    parser.add_argument("--trials", type=int, default=200, help="byte flips per file")
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument("--alternatives", type=int, default=31, help="alternative answers per canary (exposure)")
    parser.add_argument("--seeds", type=int, default=2, help="canary secrets (each: one run per ε)")
    parser.add_argument("--sites", type=int, default=1, help="one: no averaging dilutes memorization")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--local-steps", type=int, default=400)
    parser.add_argument("--records", type=int, default=24, help="records per site besides the canaries")
    parser.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with contextlib.ExitStack() as stack:
        work = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        if "tamper" in parts:
            tamper(work, args.trials, seed=0)
        if "epsilon" in parts:
            epsilon_table(work, args)


if __name__ == "__main__":
    main()
