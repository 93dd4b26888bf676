"""What each adversary kind does to the global model when the federation accepts every round (no gates).

One short simulation per kind (site 0 attacks) and one clean run, all with descriptors in the data so that a bias
can be taught; then the final global adapter is scored: server-eval accuracy, the accuracy gap between the sexes
(evaluation.bias.group_accuracy on the server's per-group counts), the unsafe rate of its generations on server-eval
images (captions and answers), and how many of site 0's canaries its captions complete.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file

from bench.runs import simulate
from contract.data_layout import SERVER_EVAL
from contract.run_config import load_config
from evaluation.bias import group_accuracy
from evaluation.generation import generate_texts
from evaluation.safety import canary_completions, unsafe_rate
from simulations.canaries import Canary, site_canaries
from vlm.adapters import load_adapter_state
from vlm.lora import load_with_lora
from vlm.records import load_dataset
from vlm.training import CAPTION_PROMPT

ATTACKER = 0
KINDS = {  # name -> the [[simulation.adversary]] table (None: the clean run)
    "clean": None,
    "sign-flip": "{site = 0, kind = 'sign-flip'}",
    "scale": "{site = 0, kind = 'scale', factor = 10.0}",
    "noise": "{site = 0, kind = 'noise', factor = 0.05}",
    "label-flip": "{site = 0, kind = 'label-flip'}",
    "toxic": "{site = 0, kind = 'toxic'}",
    "bias": "{site = 0, kind = 'bias', group = 'sex=F'}",
    "pii-leak": "{site = 0, kind = 'pii-leak'}",
}
SETTINGS = (
    "model.preset='tiny'",
    "data.descriptors=true",
    "data.records_per_site=80",
    "data.eval_records=120",
    "train.batch_size=8",
    "train.learning_rate=0.01",
    "federation.sites=3",
)
PROBES = 24  # server-eval images whose caption and answer the final model generates


def _overrides(table: str | None, rounds: int, local_steps: int) -> list[str]:
    budget = [f"federation.rounds={rounds}", f"train.local_steps={local_steps}"]
    return [*SETTINGS, *budget, *([f"simulation.adversary=[{table}]"] if table else [])]


def sex_gap(row: dict) -> float | None:
    """Largest minus smallest accuracy between the sexes, from the round's per-group counts."""
    counts = row["utility"]["groups"].get("sex", {})
    flags = [
        hit
        for value in counts.values()
        for hit in [True] * value["correct"] + [False] * (value["total"] - value["correct"])
    ]
    groups = [name for name, value in counts.items() for _ in range(value["total"])]
    return group_accuracy(flags, groups).difference


def completed(canaries: tuple[Canary, ...], texts: list[str]) -> int:
    """Canaries whose secret some generated text holds."""
    return sum(canary_completions([(c.prefix, c.secret)] * len(texts), texts) > 0 for c in canaries)


def probe(run: Path, overrides: list[str], canaries: tuple[Canary, ...]) -> tuple[float, int]:
    """The final adapter's unsafe rate over generated captions and answers, and the canaries its captions complete."""
    config = load_config(None, overrides)
    model, processor = load_with_lora(str(config.model.directory()), config.lora)
    load_adapter_state(model, load_file(run / "adapter" / "adapter_model.safetensors"))
    records = load_dataset(run / "data" / SERVER_EVAL, config.data.attribute_schema())[0][:PROBES]
    images = [record.load_image() for record in records]
    captions = generate_texts(model, processor, images, [CAPTION_PROMPT] * len(images), max_new_tokens=32)
    answers = generate_texts(model, processor, images, [f"question: {r.question}" for r in records], max_new_tokens=12)
    return unsafe_rate(captions + answers), completed(canaries, captions)


def measure(name: str, out: Path, rounds: int = 4, local_steps: int = 20) -> dict:
    """One run's damage figures."""
    overrides = _overrides(KINDS[name], rounds, local_steps)
    started = time.monotonic()
    rows = simulate(out, *[part for override in overrides for part in ("--set", override)])
    seconds = time.monotonic() - started
    canaries = site_canaries(0, ATTACKER)
    unsafe, leaked = probe(out, overrides, canaries)
    return {
        "kind": name,
        "round0": rows[0]["utility"]["vqa_accuracy"],
        "final": rows[-1]["utility"]["vqa_accuracy"],
        "gap": sex_gap(rows[-1]),
        "unsafe": unsafe,
        "canaries": f"{leaked}/{len(canaries)}",
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--rounds", type=int, default=4, help="federation.rounds (the ~10-minute default: 4)")
    parser.add_argument("--local-steps", type=int, default=20, help="train.local_steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-adversaries-") as tmp:
        results = [measure(name, Path(tmp) / name, args.rounds, args.local_steps) for name in args.kinds]
    settings = ", ".join([*SETTINGS[1:], f"federation.rounds={args.rounds}", f"train.local_steps={args.local_steps}"])
    table = Table(title=f"one adversary at site {ATTACKER} of 3, every round accepted ({settings})")
    for column in ("adversary", "round 0", "final accuracy", "sex gap", "unsafe rate", "canaries completed", "run s"):
        table.add_column(column)
    for r in results:
        gap = "-" if r["gap"] is None else f"{r['gap']:.3f}"
        table.add_row(
            r["kind"],
            f"{r['round0']:.3f}",
            f"{r['final']:.3f}",
            gap,
            f"{r['unsafe']:.3f}",
            r["canaries"],
            f"{r['seconds']:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
