"""How a run's published adapter treats audit canaries: each answer's margin over alternative answers to the same
prompt, and its rank among them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from PIL import Image

from evaluation.likelihood import likelihood_margin
from evaluation.utility import log_likelihoods
from vlm.collate import TextPair
from vlm.loading import load_base


@dataclass(frozen=True)
class CanaryProbe:
    """What the auditor asks about one canary: its image and question, its answer and the alternatives."""

    image: Image.Image
    question: str
    answer: str
    alternatives: tuple[str, ...]


@dataclass(frozen=True)
class CanaryScores:
    """Per canary, in order: the answer's margin and its rank.

    The margin is the answer's log-likelihood minus the log of the alternatives' mean likelihood: how much more the
    model believes this answer than random answers to the same image and question. It takes out what makes a prompt
    easy or hard for every answer, so members and non-members separate better than by raw log-likelihood.
    """

    margins: tuple[float, ...]  # higher = more likely trained on
    ranks: tuple[int, ...]  # 1 + the alternatives at least as likely as the answer


def load_published(model_dir: Path, adapter_dir: Path) -> tuple[PeftModel, object]:
    """The base model with a published PEFT adapter folder loaded onto it, for inference, and its processor."""
    model, processor = load_base(model_dir)
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    peft_model.eval()
    return peft_model, processor


@torch.no_grad()
def score_canaries(model: PeftModel, processor, probes: Sequence[CanaryProbe], batch_size: int = 64) -> CanaryScores:
    """Score every probe's answer and its alternatives (prompted as training prompts a record's question)."""
    prompts = [f"question: {probe.question}" for probe in probes]
    answers = [TextPair(probe.image, prompt, probe.answer) for probe, prompt in zip(probes, prompts)]
    scores = log_likelihoods(model, processor, answers, batch_size)
    others = [
        TextPair(probe.image, prompt, other) for probe, prompt in zip(probes, prompts) for other in probe.alternatives
    ]
    alternative_scores = iter(log_likelihoods(model, processor, others, batch_size))
    margins, ranks = [], []
    for probe, score in zip(probes, scores):
        alternatives = [next(alternative_scores) for _ in probe.alternatives]
        margins.append(likelihood_margin(score, alternatives))
        ranks.append(1 + sum(other >= score for other in alternatives))
    return CanaryScores(tuple(margins), tuple(ranks))
