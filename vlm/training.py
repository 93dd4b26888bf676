"""Local LoRA training on a site's records (also used for the centralized baseline)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image

from vlm.collate import TextPair, encode_batch, per_sample_loss, to_model
from vlm.records import Record

CAPTION_PROMPT = "describe the image."


@dataclass(frozen=True)
class TrainSettings:
    """What the [train] config section sets."""

    local_steps: int = 25
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    proximal_mu: float = 0.0
    optimizer: Literal["adamw", "sgd"] = "adamw"


@dataclass(frozen=True)
class TrainResult:
    """Counts and losses of one local training run (no data)."""

    steps: int
    mean_loss: float
    final_loss: float


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
) -> TrainResult:
    """Train the model's trainable (LoRA) parameters for settings.local_steps minibatches of records."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in trainable] if settings.proximal_mu > 0 else None
    optimizer = make_optimizer(trainable, settings)
    rng = random.Random(seed)
    model.train()
    losses = []
    for _ in range(settings.local_steps):
        chosen = rng.sample(records, k=min(settings.batch_size, len(records)))
        pairs = [pair for record in chosen for pair in record_pairs(record, images[record.record_id])]
        batch = to_model(encode_batch(processor, pairs), model)
        labels = batch.pop("labels")
        loss = per_sample_loss(model(**batch).logits, labels).mean()
        if anchor is not None:
            loss = loss + settings.proximal_mu / 2 * sum((p - a).pow(2).sum() for p, a in zip(trainable, anchor))
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
