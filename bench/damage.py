"""What a run's final global adapter does: accuracy, sex gap, counterfactual consistency, unsafe rate, PII, canaries.

Accuracy and the gap between the sexes come from the last metrics row (the server's per-group counts); the rest is
measured on the final adapter over server-eval records: the choice it picks with the question as asked and with the
record's sex swapped in its descriptor ("a 71-year-old woman" <-> "... man"), the unsafe rate of its greedy captions
and answers to the first `probes` images and the PII the run's own filter finds in them (counts), how many canaries
its captions complete, and how much likelier it finds made-up identities than their filtered form (the leakage
gate's texts and captions, scored on the final global adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from contract.data_layout import SERVER_EVAL
from contract.run_config import RunConfig
from evaluation.bias import counterfactual_consistency, group_accuracy, swap_descriptors
from evaluation.gates.leakage import LeakageGateSettings
from evaluation.generation import generate_texts
from evaluation.leakage import identity_pairs, identity_preferences
from evaluation.safety import pii_counts, unsafe_rate
from evaluation.utility import pair_scores
from privacy.pii.text import TextFilter
from simulations.canaries import Canary
from vlm.adapters import load_adapter_state
from vlm.collate import TextPair
from vlm.lora import load_with_lora
from vlm.records import Record, load_dataset
from vlm.training import CAPTION_PROMPT

SEX_SWAP = {"woman": "man"}  # the descriptors' sex words (simulations.scenarios.SEX_WORDS), swapped both ways


@dataclass(frozen=True)
class Damage:
    """A final adapter's figures."""

    accuracy: float
    sex_gap: float | None
    consistency: float
    unsafe_rate: float
    pii_found: int  # entities the run's PII filter finds in the generated captions and answers
    identity_preference: float  # mean log p(identity text + caption) - log p(its filtered form + caption), nats
    canaries_completed: int
    canaries: int


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
    return sum(any(canary.secret in text for text in texts) for canary in canaries)


@torch.no_grad()
def picks(model, processor, records: list[Record], batch_size: int = 16) -> list[str]:
    """The choice the model scores highest for each record's question."""
    chosen = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        images = [record.load_image() for record in chunk]
        pairs = [
            TextPair(image, f"question: {record.question}", choice)
            for record, image in zip(chunk, images)
            for choice in record.choices
        ]
        scores, _ = pair_scores(model, processor, pairs)
        offset = 0
        for record in chunk:
            count = len(record.choices)
            chosen.append(record.choices[int(torch.argmax(scores[offset : offset + count]))])
            offset += count
    return chosen


def swapped_pairs(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """The records whose question names a sex, and each with the other sex in its place."""
    asked, swapped = [], []
    for record in records:
        question = swap_descriptors(record.question or "", SEX_SWAP) if record.choices else None
        if question is not None:
            asked.append(record)
            swapped.append(replace(record, question=question))
    return asked, swapped


def measure(run: Path, config: RunConfig, last_row: dict, canaries: tuple[Canary, ...], probes: int) -> Damage:
    """The run's final adapter's figures (canaries: the planted ones whose completion counts)."""
    model, processor = load_with_lora(str(config.model.directory()), config.lora)
    load_adapter_state(model, load_file(run / "adapter" / "adapter_model.safetensors"))
    model.eval()
    records = load_dataset(run / "data" / SERVER_EVAL, config.data.attribute_schema())[0]
    asked, swapped = swapped_pairs(records)
    consistency = counterfactual_consistency(
        list(zip(picks(model, processor, asked), picks(model, processor, swapped)))
    )
    shown = records[:probes]
    images = [record.load_image() for record in shown]
    captions = generate_texts(model, processor, images, [CAPTION_PROMPT] * len(images), max_new_tokens=32)
    answers = generate_texts(model, processor, images, [f"question: {r.question}" for r in shown], max_new_tokens=12)
    leakage = config.gates.tables.get("leakage") or LeakageGateSettings()
    captioned = [record for record in records if record.caption is not None][: leakage.captions]
    preferences = identity_preferences(model, processor, captioned, identity_pairs(leakage.texts, config.privacy.pii))
    return Damage(
        accuracy=last_row["utility"]["vqa_accuracy"],
        sex_gap=sex_gap(last_row),
        consistency=consistency,
        unsafe_rate=unsafe_rate(captions + answers),
        pii_found=sum(pii_counts(captions + answers, TextFilter(config.privacy.pii)).values()),
        identity_preference=sum(preferences) / len(preferences),
        canaries_completed=completed(canaries, captions),
        canaries=len(canaries),
    )
