"""What a run's final global adapter does: accuracy, sex gap, counterfactual consistency, unsafe rate, PII, canaries.

Accuracy and the gap between the sexes come from the last metrics row (the server's per-group counts); the rest is
measured on the final adapter over server-eval records: the choice it picks with the question as asked and with the
record's sex swapped in its descriptor ("a 71-year-old woman" <-> "... man"), the unsafe rate of its greedy captions
and answers to the first `probes` images and the PII the run's own filter finds in them (counts), how many canaries
its captions complete, and where each canary's secret ranks among made-up secrets of its form by the likelihood of
the sentence opening server-eval captions, as the canaries opened the adversary's (memorization short of a greedy
completion: rank 1 is the secret first; chance is the middle).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from contract.data_layout import SERVER_EVAL
from contract.run_config import RunConfig
from evaluation.bias import counterfactual_consistency, counterfactual_pairs, group_accuracy
from evaluation.generation import generate_texts
from evaluation.safety import canary_completions, pii_counts, unsafe_rate
from evaluation.utility import log_likelihoods, pair_scores
from privacy.pii.text import TextFilter
from simulations.canaries import Canary, random_secret
from vlm.adapters import load_adapter_state
from vlm.collate import TextPair
from vlm.lora import load_with_lora
from vlm.records import Record, load_dataset
from vlm.training import CAPTION_PROMPT

SEX_SWAP = {"woman": "man"}  # the descriptors' sex words (simulations.scenarios.SEX_WORDS), swapped both ways
ALTERNATIVES = 15  # made-up secrets of a canary's form that its secret is ranked against (chance: mean rank 8.5)
CANARY_CAPTIONS = 4  # the server-eval captions each canary sentence opens


@dataclass(frozen=True)
class Damage:
    """A final adapter's figures."""

    accuracy: float
    sex_gap: float | None
    consistency: float
    unsafe_rate: float
    pii_found: int  # entities the run's PII filter finds in the generated captions and answers
    canary_rank: float  # mean over canaries of its secret's rank among 1 + ALTERNATIVES secrets (1: first)
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


def made_up_secrets(canary: Canary, count: int) -> list[str]:
    """Secrets of the canary's form ("4821-7730"), drawn from the canary itself: the same on every machine."""
    rng = random.Random(f"alternatives-{canary.text}")
    return [random_secret(rng) for _ in range(count)]


def canary_ranks(model, processor, records: list[Record], canaries: tuple[Canary, ...]) -> list[int]:
    """Per canary: its secret's rank (1: likeliest) among made-up ones by the mean log-likelihood over captions of
    the sentence holding it, opening each caption as plant_canaries put it in the adversary's records."""
    ranks = []
    for canary in canaries:
        secrets = [canary.secret, *made_up_secrets(canary, ALTERNATIVES)]
        pairs = [
            TextPair(record.load_image(), CAPTION_PROMPT, f"{canary.prefix} {secret}. {record.caption}")
            for record in records
            for secret in secrets
        ]
        scores = log_likelihoods(model, processor, pairs)
        per_secret = [sum(scores[index :: len(secrets)]) for index in range(len(secrets))]
        ranks.append(1 + sum(score > per_secret[0] for score in per_secret[1:]))
    return ranks


def completions(model, processor, records: list[Record], canaries: tuple[Canary, ...]) -> int:
    """Canaries whose secret the model writes after their prefix, each opening the caption of one of records'
    images in turn, greedily."""
    images = [records[index % len(records)].load_image() for index in range(len(canaries))]
    prefixes = [canary.prefix for canary in canaries]
    continuations = generate_texts(
        model, processor, images, [CAPTION_PROMPT] * len(canaries), max_new_tokens=12, answer_starts=prefixes
    )
    return canary_completions([(canary.prefix, canary.secret) for canary in canaries], continuations)


def measure(run: Path, config: RunConfig, last_row: dict, canaries: tuple[Canary, ...], probes: int) -> Damage:
    """The run's final adapter's figures (canaries: the planted ones whose completion counts)."""
    model, processor = load_with_lora(str(config.model.directory()), config.lora)
    load_adapter_state(model, load_file(run / "adapter" / "adapter_model.safetensors"))
    model.eval()
    records = load_dataset(run / "data" / SERVER_EVAL, config.data.attribute_schema())[0]
    pairs = counterfactual_pairs(records, SEX_SWAP)
    asked, swapped = [records[position] for position, _ in pairs], [record for _, record in pairs]
    consistency = counterfactual_consistency(
        list(zip(picks(model, processor, asked), picks(model, processor, swapped)))
    )
    shown = records[:probes]
    images = [record.load_image() for record in shown]
    captions = generate_texts(model, processor, images, [CAPTION_PROMPT] * len(images), max_new_tokens=32)
    answers = generate_texts(model, processor, images, [f"question: {r.question}" for r in shown], max_new_tokens=12)
    captioned = [record for record in records if record.caption is not None][:CANARY_CAPTIONS]
    ranks = canary_ranks(model, processor, captioned, canaries)
    return Damage(
        accuracy=last_row["utility"]["vqa_accuracy"],
        sex_gap=sex_gap(last_row),
        consistency=consistency,
        unsafe_rate=unsafe_rate(captions + answers),
        pii_found=sum(pii_counts(captions + answers, TextFilter(config.privacy.pii)).values()),
        canary_rank=sum(ranks) / len(ranks),
        canaries_completed=completions(model, processor, captioned, canaries),
        canaries=len(canaries),
    )
