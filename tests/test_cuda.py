"""The CUDA path, where a GPU is present: a bf16 base with float32 LoRA, plain and DP-SGD training on the GPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evaluation.utility import log_likelihoods
from privacy.dp.dp_sgd import train_lora_dp
from privacy.dp.ledger import DpPlan
from tests.test_dp_sgd import _max_difference
from vlm.adapters import adapter_state, load_adapter_state
from vlm.lora import LoraSettings, load_with_lora
from vlm.records import load_dataset
from vlm.training import TrainSettings, record_pairs, train_lora

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA path needs a CUDA device")

NOISY = DpPlan(noise_multiplier=1.0, sample_rate=0.5, max_grad_norm=1.0, delta=1e-5, accountant="rdp", planned_steps=3)


@pytest.fixture(scope="module")
def site_records(hospital_root):
    records, _ = load_dataset(hospital_root / "site-0")
    records = records[:8]
    return records, {r.record_id: r.load_image() for r in records}


def test_the_base_runs_in_bf16_on_the_gpu_and_lora_trains_in_float32(tiny_model_dir, site_records):
    records, images = site_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    frozen = {(p.device.type, p.dtype) for p in model.parameters() if not p.requires_grad}
    trainable = {(p.device.type, p.dtype) for p in model.parameters() if p.requires_grad}
    assert frozen == {("cuda", torch.bfloat16)}
    assert trainable == {("cuda", torch.float32)}
    start = adapter_state(model)
    train_lora(model, processor, records, images, TrainSettings(local_steps=3, batch_size=4), seed=0)
    trained = adapter_state(model)
    assert {(t.device.type, t.dtype) for t in trained.values()} == {("cpu", torch.float32)}
    assert _max_difference(trained, start) > 1e-3


def test_training_on_the_gpu_raises_the_likelihood_of_what_it_trained_on(tiny_model_dir, site_records):
    records, images = site_records
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    pairs = [pair for record in records for pair in record_pairs(record, images[record.record_id])]
    before = sum(log_likelihoods(model, processor, pairs))
    train_lora(model, processor, records, images, TrainSettings(local_steps=20, batch_size=8), seed=0)
    after = sum(log_likelihoods(model, processor, pairs))
    assert after > before + len(pairs) * 0.1  # at least 0.1 nats a pair better


def test_dp_sgd_draws_its_noise_on_the_gpu_and_repeats_with_its_seed(tiny_model_dir, site_records):
    records, images = site_records
    records = [dataclasses.replace(r, question=None, answer=None) for r in records]
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    settings = TrainSettings(local_steps=3, learning_rate=0.01)
    start = adapter_state(model)
    runs = {}
    for name, seed, secure in (("first", 7, False), ("again", 7, False), ("other seed", 8, False), ("secure", 7, True)):
        load_adapter_state(model, start)
        result = train_lora_dp(model, processor, records, images, settings, NOISY, seed=seed, secure_rng=secure)
        runs[name] = result, adapter_state(model)
    first, again = runs["first"], runs["again"]
    assert first[0].sampled_records == again[0].sampled_records
    assert _max_difference(first[1], again[1]) < 1e-5
    for name in ("other seed", "secure"):
        assert _max_difference(runs[name][1], first[1]) > 1e-3, name
    assert all(not torch.equal(start[key], first[1][key]) for key in start)
