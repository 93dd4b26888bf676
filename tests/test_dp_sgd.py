"""DP-SGD on the PEFT VLM: the Opacus step equals the plain step without noise, and every DP step moves LoRA."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from privacy.dp.dp_sgd import train_lora_dp
from privacy.dp.ledger import DpPlan
from vlm.adapters import adapter_state, load_adapter_state
from vlm.lora import LoraSettings, load_with_lora
from vlm.records import load_dataset
from vlm.training import TrainSettings, train_lora

NO_NOISE_HUGE_CLIP = DpPlan(
    noise_multiplier=0.0, sample_rate=1.0, max_grad_norm=1e6, delta=1e-5, accountant="rdp", planned_steps=2
)


@pytest.fixture(scope="module")
def caption_records(hospital_root):
    """Records with one supervised pair each (their caption), so one record is one batch row in both paths."""
    records, _ = load_dataset(hospital_root / "site-0")
    records = [dataclasses.replace(r, question=None, answer=None) for r in records[:8]]
    return records, {r.record_id: r.load_image() for r in records}


def _max_difference(a: dict, b: dict) -> float:
    return max((a[key] - b[key]).abs().max().item() for key in a)


def test_dp_step_without_noise_and_clipping_equals_the_plain_step(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    # SGD: its step scales with the gradient (AdamW's would hide a wrongly scaled one).
    settings = TrainSettings(local_steps=2, batch_size=len(records), learning_rate=0.5, optimizer="sgd")
    start = adapter_state(model)
    train_lora(model, processor, records, images, settings, seed=0)
    plain = adapter_state(model)
    load_adapter_state(model, start)
    result = train_lora_dp(model, processor, records, images, settings, NO_NOISE_HUGE_CLIP, seed=0)
    private = adapter_state(model)
    assert result.sampled_records == 2 * len(records) and result.empty_steps == 0
    moved = _max_difference(plain, start)
    assert moved > 1e-3  # the steps did move the adapter (B and, in the second step, A)
    assert _max_difference(private, plain) < 1e-6 * max(1.0, moved) + 1e-7


def test_a_tight_clip_changes_the_step(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    settings = TrainSettings(local_steps=2, batch_size=len(records), learning_rate=0.01)
    start = adapter_state(model)
    train_lora_dp(model, processor, records, images, settings, NO_NOISE_HUGE_CLIP, seed=0)
    unclipped = adapter_state(model)
    load_adapter_state(model, start)
    tight = dataclasses.replace(NO_NOISE_HUGE_CLIP, max_grad_norm=1e-3)
    train_lora_dp(model, processor, records, images, settings, tight, seed=0)
    assert _max_difference(adapter_state(model), unclipped) > 1e-5


def test_every_dp_step_moves_every_lora_tensor_even_with_an_empty_batch(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    noisy = DpPlan(
        noise_multiplier=1.0, sample_rate=0.5, max_grad_norm=1.0, delta=1e-5, accountant="rdp", planned_steps=3
    )
    never_sampled = dataclasses.replace(noisy, sample_rate=1e-9)
    for seed, plan in enumerate((noisy, noisy, never_sampled)):
        before = adapter_state(model)
        result = train_lora_dp(model, processor, records, images, TrainSettings(local_steps=1), plan, seed=seed)
        after = adapter_state(model)
        assert all(not torch.equal(before[key], after[key]) for key in before), f"step {seed} left a tensor unchanged"
    assert result.empty_steps == 1 and result.sampled_records == 0


def test_the_model_carries_no_opacus_hooks_after_a_dp_round(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    plan = dataclasses.replace(NO_NOISE_HUGE_CLIP, noise_multiplier=0.5)
    for seed in range(2):  # wrapping the same cached model twice raises if hooks were left behind
        train_lora_dp(model, processor, records, images, TrainSettings(local_steps=1), plan, seed=seed)
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())


def test_ffa_lora_trains_and_sends_only_b(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings(ffa=True))
    a_before = {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_A." in n}
    plan = dataclasses.replace(NO_NOISE_HUGE_CLIP, noise_multiplier=0.5, max_grad_norm=1.0)
    train_lora_dp(model, processor, records, images, TrainSettings(local_steps=2), plan, seed=0)
    state = adapter_state(model)
    assert state and all(".lora_B." in key for key in state)
    assert any(t.abs().sum() > 0 for t in state.values())
    assert all(torch.equal(p, a_before[n]) for n, p in model.named_parameters() if ".lora_A." in n)


def test_the_site_optimizer_continues_across_rounds(tiny_model_dir, caption_records):
    records, images = caption_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    plan = dataclasses.replace(NO_NOISE_HUGE_CLIP, noise_multiplier=0.5, max_grad_norm=1.0)
    first = train_lora_dp(model, processor, records, images, TrainSettings(local_steps=2), plan, seed=0)
    assert first.optimizer_state and all(v.item() == 2 for k, v in first.optimizer_state.items() if k.endswith("/step"))
    second = train_lora_dp(
        model,
        processor,
        records,
        images,
        TrainSettings(local_steps=3),
        plan,
        seed=1,
        optimizer_state=first.optimizer_state,
    )
    assert all(v.item() == 5 for k, v in second.optimizer_state.items() if k.endswith("/step"))
    moment = next(k for k in first.optimizer_state if k.endswith("/exp_avg_sq"))
    assert not torch.equal(first.optimizer_state[moment], second.optimizer_state[moment])
