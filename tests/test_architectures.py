"""Every supported architecture loads from a local directory and LoRA-trains through the one code path."""

import pytest
import torch

from evaluation.utility import score_vqa
from tests.tiny_checkpoints import ARCHITECTURES, build_tiny_checkpoint
from vlm.adapters import adapter_state
from vlm.collate import IGNORE_INDEX, TextPair, encode_batch
from vlm.loading import load_base
from vlm.lora import LoraSettings, attach_lora
from vlm.records import load_dataset
from vlm.training import TrainSettings, train_lora

VISION = ("vision_tower", "vision_model")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_load_lora_train_and_score(arch, tmp_path, hospital_root):
    model_dir = build_tiny_checkpoint(arch, tmp_path / arch)
    model, processor = load_base(model_dir)
    torch.manual_seed(0)
    peft_model = attach_lora(model, LoraSettings())
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and not any(part in n for n in trainable for part in VISION)

    records, _ = load_dataset(hospital_root / "site-0")
    before = adapter_state(peft_model)
    images = {r.record_id: r.load_image() for r in records}
    result = train_lora(peft_model, processor, records, images, TrainSettings(local_steps=2, batch_size=4), seed=0)
    after = adapter_state(peft_model)
    assert torch.isfinite(torch.tensor(result.mean_loss))
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)

    score = score_vqa(peft_model, processor, records[:6])
    assert score.total == 6


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_labels_are_exactly_the_answer(arch, tmp_path):
    model_dir = build_tiny_checkpoint(arch, tmp_path / arch)
    _, processor = load_base(model_dir)
    from PIL import Image

    pair = TextPair(Image.new("RGB", (32, 32), "red"), "question: what colour is the box?", "red")
    batch = encode_batch(processor, [pair])
    labelled = batch["input_ids"][0][batch["labels"][0] != IGNORE_INDEX]
    decoded = processor.tokenizer.decode(labelled, skip_special_tokens=True).strip()
    assert decoded == "red"
