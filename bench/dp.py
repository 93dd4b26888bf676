"""Differential privacy benchmark: accounting against Google's dp-accounting, DP-SGD overhead, and utility.

1. Accounting: the ε a site's ledger records after the demo's planned rounds (target ε 1, 4, 8) beside Google's
   dp-accounting for the same recorded parameters (RDP ↔ RdpAccountant, PRV ↔ PLDAccountant). Goal: within 2%.
2. Overhead: one training step on the tiny preset, DP-SGD (Opacus hooks, clipping, noise) vs plain, on the same
   batch rows, interleaved; time ratio (goal ≤ 1.25) and peak-memory ratio (the process's RSS high-water mark on CPU,
   the allocator's peak on CUDA; model included).
3. Utility: the hospital demo's server-eval accuracy without DP (the demo's LoRA, and the DP preset's) and with
   the DP preset (configs/hospital_dp.toml: rank 4, alpha 64) at ε ∈ {1, 4, 8} (δ = 1e-5), for standard LoRA and
   FFA-LoRA, side by side. Goal at ε = 8: ≥ 0.9 × the demo without DP.

Run: python -m bench.dp [--parts accounting,overhead,utility]   (utility: ten demo runs, about 25 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dp_accounting
import torch
from dp_accounting import pld, rdp
from rich.console import Console
from rich.table import Table

from bench.runs import CONFIGS, DEMO_CONFIG, simulate
from contract.data_layout import site_folder
from contract.run_config import RunConfig, load_config
from privacy.dp.dp_sgd import train_lora_dp
from privacy.dp.ledger import DpPlan, Ledger
from privacy.dp.planning import site_plan
from simulations.synth import write_scenario
from vlm.lora import load_with_lora
from vlm.records import load_dataset
from vlm.training import TrainSettings, train_lora

EPSILONS = (1.0, 4.0, 8.0)
DP_PRESET = str(CONFIGS / "hospital_dp.toml")
DEMO_SITE_RECORDS = 192  # a demo site's training split (240 records, 20% held out)
console = Console(width=120)


def independent_epsilon(plan: DpPlan, steps: int) -> float:
    """Google dp-accounting's ε for `steps` Poisson-subsampled Gaussian steps of the plan."""
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(plan.sample_rate, dp_accounting.GaussianDpEvent(plan.noise_multiplier)),
        steps,
    )
    engine = rdp.RdpAccountant() if plan.accountant == "rdp" else pld.PLDAccountant(value_discretization_interval=1e-4)
    engine.compose(event)
    return engine.get_epsilon(plan.delta)


def accounting() -> None:
    table = Table(title=f"recorded ε after the demo's rounds ({DEMO_SITE_RECORDS} records per site) vs dp-accounting")
    for column in (
        "accountant",
        "target ε",
        "noise multiplier",
        "sample rate",
        "steps",
        "fedvlm ε",
        "dp-accounting ε",
        "difference",
    ):
        table.add_column(column, justify="right")
    worst = 0.0
    for accountant, independent_name in (("rdp", "RDP"), ("prv", "PLD")):
        for target in EPSILONS:
            config = load_config(
                overrides=[
                    "privacy.dp.enabled=true",
                    f"privacy.dp.target_epsilon={target}",
                    f"privacy.dp.accountant='{accountant}'",
                ]
            )
            plan = site_plan(config.privacy.dp, config.train, config.federation.rounds, DEMO_SITE_RECORDS)
            ledger = Ledger("bench", plan)
            for server_round in range(1, config.federation.rounds + 1):
                ledger = ledger.after(server_round, config.train.local_steps)
            recorded, independent = ledger.epsilon(), independent_epsilon(plan, ledger.steps)
            worst = max(worst, abs(recorded / independent - 1))
            table.add_row(
                f"{accountant} / {independent_name}",
                f"{target:g}",
                f"{plan.noise_multiplier:.4f}",
                f"{plan.sample_rate:.4f}",
                str(ledger.steps),
                f"{recorded:.4f}",
                f"{independent:.4f}",
                f"{recorded / independent - 1:+.2%}",
            )
    console.print(table)
    console.print(f"largest difference: [bold]{worst:.2%}[/bold] (goal ≤ 2%)")


def _peak_rss_kib() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _measured(step: Callable[[], None], device: torch.device) -> tuple[float, int]:
    """Seconds of one call and the process's peak memory (bytes) during it, model included."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets the RSS high-water mark to the current RSS
    started = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter() - started, torch.cuda.max_memory_allocated()
    return time.perf_counter() - started, _peak_rss_kib() * 1024


def overhead(batch: int = 16, steps: int = 5, repeats: int = 5) -> None:
    config = RunConfig()
    torch.set_num_threads(config.simulation.threads_per_site)  # as each ClientApp trains in the demo
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-dp-") as tmp:
        root = write_scenario("hospital", 1, Path(tmp), records_per_site=batch, eval_records=4)
        records, _ = load_dataset(site_folder(root, 0))
        images = {r.record_id: r.load_image() for r in records}
    records = [dataclasses.replace(r, question=None, answer=None) for r in records]  # one batch row per record
    model, processor = load_with_lora(str(config.model.directory()), config.lora)
    device = next(model.parameters()).device
    settings = TrainSettings(local_steps=steps, batch_size=batch)
    plan = DpPlan(1.0, 1.0, 1.0, 1e-5, "rdp", steps)  # sample rate 1: the same rows as the plain step
    runs = {
        "plain": lambda seed: train_lora(model, processor, records, images, settings, seed=seed),
        "DP-SGD": lambda seed: train_lora_dp(model, processor, records, images, settings, plan, seed=seed),
    }
    for run in runs.values():
        run(0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, list[int]] = {name: [] for name in runs}
    for seed in range(1, repeats + 1):
        for name, run in runs.items():
            seconds, peak = _measured(functools.partial(run, seed), device)
            times[name].append(seconds / steps)
            peaks[name].append(peak)
    table = Table(
        title=f"one step on the {config.model.preset} preset, {batch} rows, {device.type}, median of {repeats}"
    )
    for column in ("", "s per step", "peak memory (MiB)"):
        table.add_column(column, justify="right")
    for name in runs:
        table.add_row(name, f"{statistics.median(times[name]):.3f}", f"{statistics.median(peaks[name]) / 2**20:.1f}")
    console.print(table)
    time_ratio = statistics.median(times["DP-SGD"]) / statistics.median(times["plain"])
    memory_ratio = statistics.median(peaks["DP-SGD"]) / max(1, statistics.median(peaks["plain"]))
    console.print(f"DP / plain: time [bold]{time_ratio:.3f}[/bold] (goal ≤ 1.25), peak memory {memory_ratio:.3f}")


def utility() -> None:
    """Demo runs: no DP with the demo's LoRA and with the DP preset's; the DP preset at each ε."""
    preset_lora = ["--set", "lora.r=4", "--set", "lora.alpha=64"]  # as configs/hospital_dp.toml
    settings = [
        ("no DP, r 8 α 16 (demo)", ["--config", DEMO_CONFIG]),
        ("no DP, r 4 α 64", ["--config", DEMO_CONFIG, *preset_lora]),
    ] + [
        (f"ε = {target:g}, r 4 α 64", ["--config", DP_PRESET, "--set", f"privacy.dp.target_epsilon={target}"])
        for target in EPSILONS
    ]
    table = Table(title="hospital demo, server-eval vqa_accuracy at the last accepted round (δ = 1e-5)")
    for column in ("run", "LoRA", "FFA-LoRA", "wall s (LoRA)"):
        table.add_column(column, justify="right")
    accuracy: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-dp-") as tmp:
        for label, overrides in settings:
            seconds = 0.0
            for ffa in (False, True):
                started = time.monotonic()
                rows = simulate(Path(tmp) / "run", *overrides, "--set", f"lora.ffa={str(ffa).lower()}")
                seconds = seconds or time.monotonic() - started
                accuracy[label, ffa] = [row for row in rows if row["accepted"]][-1]["utility"]["vqa_accuracy"]
            table.add_row(label, f"{accuracy[label, False]:.3f}", f"{accuracy[label, True]:.3f}", f"{seconds:.0f}")
    console.print(table)
    baseline = accuracy["no DP, r 8 α 16 (demo)", False]
    for ffa, name in ((False, "LoRA"), (True, "FFA-LoRA")):
        ratio = accuracy["ε = 8, r 4 α 64", ffa] / baseline
        console.print(f"{name} at ε = 8 / the demo without DP = [bold]{ratio:.3f}[/bold] (goal ≥ 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="accounting,overhead,utility")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "accounting" in parts:
        accounting()
    if "overhead" in parts:
        overhead()
    if "utility" in parts:
        utility()


if __name__ == "__main__":
    main()
