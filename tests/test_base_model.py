import dataclasses
import json
import random

import torch

from privacy.pii.entities import ENTITY_TYPES
from simulations.scenarios import SCENARIOS, site_profile
from vlm.base_model import BUILD_INFO, build_untrained, ensure_base_model, pretrain
from vlm.collate import TextPair, encode_batch
from vlm.loading import load_base, weights_hash
from vlm.presets import PRESETS, get_preset


def test_build_is_deterministic_and_cached(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FEDVLM_CACHE", str(tmp_path))
    rebuilt = ensure_base_model("tiny-test")
    assert rebuilt != tiny_model_dir and weights_hash(rebuilt) == weights_hash(tiny_model_dir)
    stamp = (rebuilt / BUILD_INFO).stat().st_mtime_ns
    assert ensure_base_model("tiny-test") == rebuilt and (rebuilt / BUILD_INFO).stat().st_mtime_ns == stamp


def test_cache_key_follows_every_setting():
    preset = get_preset("tiny-test")
    assert preset.fingerprint() == dataclasses.replace(preset).fingerprint()
    for change in ({"pretrain_steps": 81}, {"seed": 1}, {"pretrain_lr": 1e-3}, {"text_hidden": 32}):
        assert dataclasses.replace(preset, **change).fingerprint() != preset.fingerprint()
    assert len({p.fingerprint() for p in PRESETS.values()}) == len(PRESETS)


def test_pretraining_lowers_the_loss():
    preset = get_preset("tiny-test")
    model, processor = build_untrained(preset)
    from vlm.pretraining_data import examples

    held_out = [TextPair(e.image, e.prompt, e.target) for e, _ in zip(examples(seed=99, size_px=32), range(32))]
    batch = encode_batch(processor, held_out)
    labels = batch.pop("labels")
    with torch.no_grad():
        before = model(**batch, labels=labels).loss.item()
    pretrain(model, processor, preset)
    with torch.no_grad():
        after = model(**batch, labels=labels).loss.item()
    assert after < 0.6 * before


def test_saved_model_loads_through_the_auto_path(tiny_model_dir):
    model, processor = load_base(tiny_model_dir)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert not any(p.requires_grad for p in model.parameters())
    info = json.loads((tiny_model_dir / BUILD_INFO).read_text())
    assert info["fingerprint"] == get_preset("tiny-test").fingerprint()


def test_weights_do_not_depend_on_the_callers_thread_count(tmp_path, monkeypatch):
    # the tiny preset's sizes, where torch splits sums across threads, pre-trained for a few steps only
    preset = dataclasses.replace(get_preset("tiny"), name="threads-test", pretrain_steps=6)
    monkeypatch.setitem(PRESETS, preset.name, preset)
    before, hashes = torch.get_num_threads(), {}
    for threads in (1, 2):
        monkeypatch.setenv("FEDVLM_CACHE", str(tmp_path / f"threads-{threads}"))
        torch.set_num_threads(threads)
        try:
            hashes[threads] = weights_hash(ensure_base_model("threads-test"))
        finally:
            torch.set_num_threads(before)
    assert hashes[1] == hashes[2]


def test_cache_key_carries_the_cpu_instruction_set(monkeypatch):
    preset = get_preset("tiny-test")
    key = preset.fingerprint()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NO AVX")
    assert preset.fingerprint() != key


def test_cache_key_carries_the_vocabulary():
    preset = get_preset("tiny-test")
    changed = dataclasses.replace(preset, vocabulary=(*preset.vocabulary, "pneumothorax"))
    assert changed.fingerprint() != preset.fingerprint()


def test_the_scenarios_use_only_words_the_tiny_tokenizer_knows():
    vocabulary = set(get_preset("tiny").vocabulary)
    used: set[str] = set()
    for name, make_record in SCENARIOS.items():
        rng = random.Random(name)
        for index in range(200):
            _, fields = make_record(rng, site_profile(index % 4, 4))
            texts = [fields["caption"], fields["question"], fields["answer"], *fields["choices"]]
            used.update(word.strip(".,:?;") for text in texts for word in text.split())
    used |= {f"<{entity}>" for entity in ENTITY_TYPES}
    assert sorted(used - vocabulary) == []
