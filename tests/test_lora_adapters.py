import torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText

from evaluation.utility import score_vqa
from vlm.adapters import adapter_state, load_adapter_state, save_adapter, state_bytes, state_hash
from vlm.loading import compute_dtype, load_base, select_device
from vlm.lora import LoraSettings, attach_lora
from vlm.records import load_dataset
from vlm.training import TrainSettings, train_lora


def _trained(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    torch.manual_seed(0)
    peft_model = attach_lora(model, LoraSettings())
    records, _ = load_dataset(hospital_root / "site-0")
    images = {r.record_id: r.load_image() for r in records}
    train_lora(peft_model, processor, records, images, TrainSettings(local_steps=3, batch_size=4), seed=0)
    return peft_model, processor


def test_default_lora_never_touches_the_vision_tower(tiny_model_dir):
    model, _ = load_base(tiny_model_dir)
    peft_model = attach_lora(model, LoraSettings())
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)
    assert any("language_model" in n and "q_proj" in n for n in trainable)
    assert any("multi_modal_projector" in n for n in trainable)


def test_projector_can_be_left_out(tiny_model_dir):
    model, _ = load_base(tiny_model_dir)
    peft_model = attach_lora(model, LoraSettings(projector=False, target_modules=("v_proj",)))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("language_model" in n and "v_proj" in n for n in trainable)


def test_only_float32_adapter_tensors_travel(tiny_model_dir, hospital_root):
    peft_model, _ = _trained(tiny_model_dir, hospital_root)
    state = adapter_state(peft_model)
    assert state and all("lora_" in key for key in state)
    assert all(t.dtype == torch.float32 for t in state.values())
    base_bytes = sum(p.numel() * 4 for n, p in peft_model.named_parameters() if "lora_" not in n)
    assert state_bytes(state) < 0.2 * base_bytes


def test_training_moves_lora_b_and_state_round_trips(tiny_model_dir, hospital_root):
    peft_model, _ = _trained(tiny_model_dir, hospital_root)
    state = adapter_state(peft_model)
    assert any(t.abs().sum() > 0 for k, t in state.items() if "lora_B" in k)
    fresh_model, _ = load_base(tiny_model_dir)
    fresh = attach_lora(fresh_model, LoraSettings())
    assert state_hash(adapter_state(fresh)) != state_hash(state)
    load_adapter_state(fresh, state)
    assert state_hash(adapter_state(fresh)) == state_hash(state)


def test_mismatched_state_is_refused(tiny_model_dir):
    model, _ = load_base(tiny_model_dir)
    peft_model = attach_lora(model, LoraSettings())
    state = adapter_state(peft_model)
    key = next(iter(state))
    try:
        load_adapter_state(peft_model, {k: v for k, v in state.items() if k != key})
    except ValueError as error:
        assert "1 missing" in str(error)
    else:
        raise AssertionError("a missing key was accepted")


def test_saved_adapter_loads_with_peft_and_reproduces_scores(tiny_model_dir, hospital_root, tmp_path):
    peft_model, processor = _trained(tiny_model_dir, hospital_root)
    state = adapter_state(peft_model)
    save_adapter(peft_model, state, tmp_path / "adapter", tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    expected = score_vqa(peft_model, processor, records)

    config_path = (tmp_path / "adapter" / "adapter_config.json").read_text()
    assert str(tiny_model_dir.resolve()) in config_path
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=compute_dtype(select_device()))
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").to(select_device())
    reloaded = score_vqa(loaded, processor, records)
    assert (reloaded.correct, reloaded.total) == (expected.correct, expected.total)
    assert state_hash(adapter_state(loaded)) == state_hash(state)
