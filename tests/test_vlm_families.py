"""Per family: adapters load with PEFT's loader, projectors resolve, prompts use the chat template, batches
carry one image list per prompt, and processors load without torchvision."""

import logging

import pytest
import torch
from peft import PeftModel
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from tests.tiny_checkpoints import ARCHITECTURES, build_tiny_checkpoint
from vlm.adapters import adapter_state, save_adapter, state_hash
from vlm.collate import IGNORE_INDEX, TextPair, encode_batch, prompt_text, to_model
from vlm.loading import load_base
from vlm.lora import LoraSettings, attach_lora, projector_linear_names

# Worked out from each family's modeling code in transformers 5.23 (module tree of the tiny checkpoints).
PROJECTOR_LINEARS = {
    "llava": ["model.multi_modal_projector.linear_1", "model.multi_modal_projector.linear_2"],
    "llava_next": ["model.multi_modal_projector.linear_1", "model.multi_modal_projector.linear_2"],
    "paligemma": ["model.multi_modal_projector.linear"],
    "idefics3": ["model.connector.modality_projection.proj"],
    "qwen2_vl": ["model.visual.merger.mlp.0", "model.visual.merger.mlp.2"],
    "qwen2_5_vl": ["model.visual.merger.mlp.0", "model.visual.merger.mlp.2"],
    "qwen3_vl": [
        "model.visual.merger.linear_fc1",
        "model.visual.merger.linear_fc2",
        "model.visual.deepstack_merger_list.0.linear_fc1",
        "model.visual.deepstack_merger_list.0.linear_fc2",
    ],
    "gemma3": [],
    "smolvlm": ["model.connector.modality_projection.proj"],
    "llava_onevision": ["model.multi_modal_projector.linear_1", "model.multi_modal_projector.linear_2"],
    "mistral3": [
        "model.multi_modal_projector.patch_merger.merging_layer",
        "model.multi_modal_projector.linear_1",
        "model.multi_modal_projector.linear_2",
    ],
    "internvl": ["model.multi_modal_projector.linear_1", "model.multi_modal_projector.linear_2"],
    "mllama": ["model.multi_modal_projector"],
}
# Processors whose AutoProcessor build needs torchvision (a video processor, or Pixtral's module).
NEEDS_TORCHVISION = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm", "llava_onevision", "mistral3", "internvl")
# The prompt each chat template writes for one image and "question: what colour?", as the templates read.
CHAT_PROMPTS = {
    "qwen2_vl": "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>question: what colour?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "gemma3": "<bos><start_of_turn>user\n<start_of_image>question: what colour?<end_of_turn>\n<start_of_turn>model\n",
    "smolvlm": "<|im_start|>User:<image> question: what colour?<end_of_utterance>\nAssistant:",
    "mistral3": "<s>[INST][IMG]question: what colour?[/INST]",
    "mllama": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>question: what colour?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_projector_is_resolved_per_family(arch, tmp_path):
    model, _ = load_base(build_tiny_checkpoint(arch, tmp_path / arch))
    assert sorted(projector_linear_names(model)) == sorted(PROJECTOR_LINEARS[arch])


def test_no_adaptable_projector_is_logged(tmp_path, caplog):
    model, _ = load_base(build_tiny_checkpoint("gemma3", tmp_path / "gemma3"))
    with caplog.at_level(logging.WARNING, logger="vlm.lora"):
        attach_lora(model, LoraSettings(projector=True))
    assert [r.getMessage() for r in caplog.records] == [
        "lora.projector = true, but Gemma3ForConditionalGeneration has no linear layer in a vision-to-text "
        "projector: only the language model is adapted"
    ]


@pytest.mark.parametrize("arch", NEEDS_TORCHVISION)
def test_processor_loads_image_only_without_torchvision(arch, tmp_path):
    model_dir = build_tiny_checkpoint(arch, tmp_path / arch)
    with pytest.raises((ImportError, OSError)):  # the video part (or Pixtral's module) needs torchvision
        AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    _, processor = load_base(model_dir)
    assert not hasattr(processor, "video_processor")
    assert type(processor).__name__ == type(processor).__mro__[1].__name__  # the family's own class


@pytest.mark.parametrize("arch", sorted(CHAT_PROMPTS))
def test_prompt_follows_the_chat_template(arch, tmp_path):
    _, processor = load_base(build_tiny_checkpoint(arch, tmp_path / arch))
    assert prompt_text(processor, "question: what colour?") == CHAT_PROMPTS[arch]
    begun = prompt_text(processor, "question: what colour?", answer_start="the access code is")
    assert begun.startswith(CHAT_PROMPTS[arch]) and begun.endswith("the access code is")
    assert not begun[len(CHAT_PROMPTS[arch]) : -len("the access code is")].strip()  # the answer's turn, begun


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_prompt_gets_its_own_image_and_answer(arch, tmp_path):
    _, processor = load_base(build_tiny_checkpoint(arch, tmp_path / arch))
    pairs = [
        TextPair(Image.new("RGB", (32, 32), "red"), "question: what colour is the box?", "red"),
        TextPair(Image.new("RGB", (48, 40), "blue"), "describe the image.", "a large blue square on the left."),
        TextPair(Image.new("RGB", (40, 48), "green"), "question: how many?", "two"),
    ]
    batch = encode_batch(processor, pairs)
    assert batch["input_ids"].shape[0] == 3
    for row, answer in enumerate(("red", "a large blue square on the left.", "two")):
        labelled = batch["input_ids"][row][batch["labels"][row] != IGNORE_INDEX]
        assert processor.tokenizer.decode(labelled, skip_special_tokens=True).strip() == answer


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_saved_adapter_loads_with_peft(arch, tmp_path):
    model_dir = build_tiny_checkpoint(arch, tmp_path / arch)
    model, processor = load_base(model_dir)
    torch.manual_seed(0)
    peft_model = attach_lora(model, LoraSettings())
    state = {key: torch.randn_like(value) for key, value in adapter_state(peft_model).items()}
    save_adapter(peft_model, state, tmp_path / "adapter", model_dir)
    batch = encode_batch(processor, [TextPair(Image.new("RGB", (32, 32), "red"), "question: what colour?", "red")])
    batch.pop("labels")
    with torch.no_grad():
        expected = peft_model(**to_model(batch, peft_model)).logits

    base = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True)
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
    assert state_hash(adapter_state(loaded)) == state_hash(state)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**to_model(batch, loaded)).logits, expected)
