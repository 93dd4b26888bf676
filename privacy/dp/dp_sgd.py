"""DP-SGD on the LoRA parameters with Opacus: Poisson sampling, per-sample clipping, Gaussian noise.

One record is one sample: each step includes every record independently with probability `sample_rate`,
and a sampled record contributes one supervised pair (its question, or caption or question at random), so
clipping bounds a record's whole influence. An empty Poisson batch still takes a noise-only step, which the
accountant counts.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from PIL import Image

from privacy.dp.ledger import DpPlan
from vlm.collate import TextPair, encode_batch, per_sample_loss, to_model
from vlm.records import Record
from vlm.training import (
    WHOLE_RUN,
    Span,
    TrainResult,
    TrainSettings,
    load_optimizer_arrays,
    make_optimizer,
    optimizer_arrays,
    record_pairs,
    scheduled_steps,
)


@dataclass(frozen=True)
class DpTrainResult(TrainResult):
    """A DP round's counts: steps taken and how many of them had an empty Poisson batch."""

    empty_steps: int
    sampled_records: int
    optimizer_state: dict[str, torch.Tensor]  # moments of privatized gradients only: safe to keep at the site


def _generators(seed: int, secure_rng: bool, device: torch.device) -> tuple[random.Random, torch.Generator]:
    """Sampling and noise sources: seeded and reproducible, or drawn from the OS's CSPRNG.

    The noise generator lives on the parameters' device: Opacus draws the noise there with it.
    """
    noise = torch.Generator(device=device)
    if secure_rng:
        noise.manual_seed(int.from_bytes(os.urandom(8), "big"))
        return random.SystemRandom(), noise
    noise.manual_seed(seed)
    return random.Random(seed), noise


def _pair(record: Record, image: Image.Image, plan: DpPlan, sampler: random.Random) -> TextPair:
    """The one pair a sampled record contributes this step."""
    pairs = record_pairs(record, image)
    return pairs[-1] if plan.record_pair == "question" else sampler.choice(pairs)  # the question comes last


def _noise_only(optimizer: DPOptimizer) -> None:
    """An empty batch: zero per-sample gradients, so the step adds only noise."""
    for parameter in optimizer.params:
        parameter.grad_sample = torch.zeros((0, *parameter.shape), dtype=parameter.dtype, device=parameter.device)


def _per_sample_backward(private: GradSampleModule, model: torch.nn.Module, processor, pairs: list[TextPair]) -> float:
    """Forward and backward through Opacus's hooks: per-sample gradients land in p.grad_sample."""
    batch = to_model(encode_batch(processor, pairs), model)
    labels = batch.pop("labels")
    loss = per_sample_loss(private(**batch).logits, labels).mean()
    loss.backward()
    return loss.item()


def _private_step(
    optimizer: DPOptimizer, trainable: list[torch.nn.Parameter], anchor: list[torch.Tensor] | None, mu: float
) -> None:
    """Clip, sum, noise and scale into p.grad; add FedProx's pull (it uses no data); step."""
    if not optimizer.pre_step():
        return
    if anchor is not None:
        for parameter, start in zip(trainable, anchor):
            parameter.grad += mu * (parameter.detach() - start)
    optimizer.original_optimizer.step()


def train_lora_dp(
    model: torch.nn.Module,
    processor,
    records: list[Record],
    images: dict[str, Image.Image],
    settings: TrainSettings,
    plan: DpPlan,
    seed: int,
    secure_rng: bool = False,
    optimizer_state: dict[str, torch.Tensor] | None = None,
    span: Span = WHOLE_RUN,
    proximal_mu: float = 0.0,
) -> DpTrainResult:
    """settings.local_steps DP-SGD steps on the model's trainable (LoRA) parameters (span, proximal_mu: as
    train_lora's).

    optimizer_state continues the site's optimizer from its last round: Adam restarted on noisy gradients
    takes sign-like first steps of full learning rate on every coordinate, which noise dominates.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in trainable] if proximal_mu > 0 else None
    sampler, noise = _generators(seed, secure_rng, trainable[0].device)
    private = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    optimizer = DPOptimizer(
        make_optimizer(trainable, settings),
        noise_multiplier=plan.noise_multiplier,
        max_grad_norm=plan.max_grad_norm,
        expected_batch_size=max(1, round(plan.sample_rate * len(records))),
        loss_reduction="mean",
        generator=noise,
        secure_mode=secure_rng,
    )
    if optimizer_state:
        load_optimizer_arrays(optimizer.original_optimizer, optimizer_state)
    losses, empty_steps, sampled = [], 0, 0
    private.train()
    try:
        with warnings.catch_warnings():  # Opacus hooks LoRA layers whose inputs need no gradient (frozen base)
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            for _ in scheduled_steps(optimizer, settings, span):
                optimizer.zero_grad(set_to_none=True)
                chosen = [record for record in records if sampler.random() < plan.sample_rate]
                sampled += len(chosen)
                if chosen:
                    pairs = [_pair(r, images[r.record_id], plan, sampler) for r in chosen]
                    losses.append(_per_sample_backward(private, model, processor, pairs))
                else:
                    empty_steps += 1
                    _noise_only(optimizer)
                _private_step(optimizer, trainable, anchor, proximal_mu)
    finally:
        private._close()  # the cached model is reused next round without hooks
    model.eval()
    return DpTrainResult(
        steps=settings.local_steps,
        mean_loss=sum(losses) / len(losses) if losses else 0.0,
        final_loss=losses[-1] if losses else 0.0,
        empty_steps=empty_steps,
        sampled_records=sampled,
        optimizer_state=optimizer_arrays(optimizer.original_optimizer),
    )
