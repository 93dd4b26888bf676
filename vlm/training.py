"""Local LoRA training on a site's records (also used for the centralized baseline)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from vlm.collate import TextPair, encode_batch, per_sample_loss, to_model
from vlm.records import Record

CAPTION_PROMPT = "describe the image."


class TrainSettings(BaseModel):
    """The [train] section: local training at each site, per round."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    local_steps: int = Field(25, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-3, gt=0.0)  # peak: the cosine schedule decays it to 0 over the whole run
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"


@dataclass(frozen=True)
class TrainResult:
    """Counts and losses of one local training run (no data)."""

    steps: int
    mean_loss: float
    final_loss: float


Span = tuple[float, float]  # the share of a whole training run that one call covers: (start, end) in [0, 1]
WHOLE_RUN: Span = (0.0, 1.0)


def round_span(server_round: int, rounds: int) -> Span:
    """The share of a federation's training that round server_round (1-based) of rounds covers."""
    return (server_round - 1) / rounds, server_round / rounds


def learning_rate_at(settings: TrainSettings, progress: float) -> float:
    """The learning rate at a point of the whole run (0: its start, 1: its end).

    Cosine decays from learning_rate to 0. FedAvg with a constant rate on heterogeneous sites does not
    converge: each round's aggregate lands somewhere in a region whose size grows with the rate, so the
    last round's figure is a draw from it; a rate that decays to zero lets the aggregate settle.
    """
    if settings.schedule == "constant":
        return settings.learning_rate
    return settings.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


def step_progress(settings: TrainSettings, span: Span) -> list[float]:
    """Where in the whole run each of the span's local steps falls (0: its start, 1: its end)."""
    start, end = span
    return [start + (end - start) * step / settings.local_steps for step in range(settings.local_steps)]


def rate_share(settings: TrainSettings, span: Span) -> float:
    """The mean learning rate of the steps that span covers, over the peak (1.0 under a constant rate)."""
    rates = [learning_rate_at(settings, point) for point in step_progress(settings, span)]
    return sum(rates) / len(rates) / settings.learning_rate


def scheduled_steps(optimizer: torch.optim.Optimizer, settings: TrainSettings, span: Span) -> Iterator[int]:
    """Step indices 0 .. local_steps - 1, the optimizer's learning rate set for each before it is taken."""
    for step, point in enumerate(step_progress(settings, span)):
        rate = learning_rate_at(settings, point)
        for group in optimizer.param_groups:
            group["lr"] = rate
        yield step


def record_pairs(record: Record, image: Image.Image) -> list[TextPair]:
    """The supervised pairs one record yields: its caption and/or its question."""
    pairs = []
    if record.caption is not None:
        pairs.append(TextPair(image, CAPTION_PROMPT, record.caption))
    if record.question is not None:
        pairs.append(TextPair(image, f"question: {record.question}", record.answer))
    return pairs


def make_optimizer(parameters: list[torch.nn.Parameter], settings: TrainSettings) -> torch.optim.Optimizer:
    """The local optimizer that settings name, over the trainable parameters."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def optimizer_arrays(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state (Adam moments, step counts) as flat 'index/name' tensors."""
    return {
        f"{index}/{name}": value.detach().clone()
        for index, state in optimizer.state_dict()["state"].items()
        for name, value in state.items()
    }


def load_optimizer_arrays(optimizer: torch.optim.Optimizer, arrays: dict[str, torch.Tensor]) -> None:
    """Put state saved by optimizer_arrays back into a fresh optimizer over the same parameters."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in arrays.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value.clone()  # the optimizer updates its state in place
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def train_lora(
    model: torch.nn.Module,
    processor,
    records: list[Record],
    images: dict[str, Image.Image],
    settings: TrainSettings,
    seed: int,
    span: Span = WHOLE_RUN,
    proximal_mu: float = 0.0,
) -> TrainResult:
    """Train the model's trainable (LoRA) parameters for settings.local_steps minibatches of records.

    span places these steps in the whole run, for the learning-rate schedule (a site: its round's share);
    proximal_mu > 0 adds FedProx's proximal term around the received weights.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in trainable] if proximal_mu > 0 else None
    optimizer = make_optimizer(trainable, settings)
    rng = random.Random(seed)
    model.train()
    losses = []
    for _ in scheduled_steps(optimizer, settings, span):
        chosen = rng.sample(records, k=min(settings.batch_size, len(records)))
        pairs = [pair for record in chosen for pair in record_pairs(record, images[record.record_id])]
        batch = to_model(encode_batch(processor, pairs), model)
        labels = batch.pop("labels")
        loss = per_sample_loss(model(**batch).logits, labels).mean()
        if anchor is not None:
            loss = loss + proximal_mu / 2 * sum((p - a).pow(2).sum() for p, a in zip(trainable, anchor))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return TrainResult(
        steps=len(losses),
        mean_loss=sum(losses) / len(losses),
        final_loss=losses[-1],
    )
