"""How a run's published adapter treats audit canaries: each answer's log-likelihood with and without the adapter,
and its rank among alternative answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from PIL import Image

from evaluation.utility import pair_scores
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
    """Per canary, in order: the answer's log-likelihood under the adapted and the base model, and its rank."""

    adapted: tuple[float, ...]
    base: tuple[float, ...]
    ranks: tuple[int, ...]  # 1 + the alternatives at least as likely as the answer under the adapted model

    def membership(self) -> tuple[float, ...]:
        """Higher = more likely trained on: how much the adapter raised the answer's log-likelihood."""
        return tuple(adapted - base for adapted, base in zip(self.adapted, self.base))


def load_published(model_dir: Path, adapter_dir: Path) -> tuple[PeftModel, object]:
    """The base model with a published PEFT adapter folder loaded onto it, for inference, and its processor."""
    model, processor = load_base(model_dir)
    peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    peft_model.eval()
    return peft_model, processor


def _log_likelihoods(model, processor, pairs: list[TextPair], batch_size: int) -> list[float]:
    scores: list[float] = []
    for start in range(0, len(pairs), batch_size):
        scores.extend(pair_scores(model, processor, pairs[start : start + batch_size])[0].tolist())
    return scores


@torch.no_grad()
def score_canaries(model: PeftModel, processor, probes: Sequence[CanaryProbe], batch_size: int = 64) -> CanaryScores:
    """Score every probe's answer and alternatives under the adapter, and its answer under the base model."""
    prompts = [f"question: {probe.question}" for probe in probes]
    answers = [TextPair(probe.image, prompt, probe.answer) for probe, prompt in zip(probes, prompts)]
    adapted = _log_likelihoods(model, processor, answers, batch_size)
    with model.disable_adapter():
        base = _log_likelihoods(model, processor, answers, batch_size)
    others = [
        TextPair(probe.image, prompt, other) for probe, prompt in zip(probes, prompts) for other in probe.alternatives
    ]
    alternative_scores = iter(_log_likelihoods(model, processor, others, batch_size))
    ranks = []
    for probe, score in zip(probes, adapted):
        ranks.append(1 + sum(next(alternative_scores) >= score for _ in probe.alternatives))
    return CanaryScores(tuple(adapted), tuple(base), tuple(ranks))
