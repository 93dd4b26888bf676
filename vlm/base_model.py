"""Build, pre-train and cache the project's tiny LLaVA-architecture VLM, deterministically."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.clip import CLIPImageProcessorPil

from storage.durable import replace_folder
from vlm.collate import TextPair, encode_batch, per_sample_loss
from vlm.presets import TinyPreset, get_preset
from vlm.pretraining_data import examples, tokenizer_corpus
from vlm.progress import progress_bar
from vlm.tokenizer import IMAGE_TOKEN, train_tokenizer

BUILD_INFO = "fedvlm_build.json"


def cache_root() -> Path:
    """Where built base models live: $FEDVLM_CACHE, else ~/.cache/fedvlm."""
    return Path(os.environ.get("FEDVLM_CACHE", Path.home() / ".cache" / "fedvlm"))


def build_untrained(preset: TinyPreset) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A randomly initialised tiny LLaVA and its processor, both from configs and a local tokenizer."""
    torch.manual_seed(preset.seed)
    tokenizer = train_tokenizer(tokenizer_corpus(preset.vocabulary), preset.vocab_size)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": preset.image_size},
        crop_size={"height": preset.image_size, "width": preset.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=preset.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
    )
    vision = CLIPVisionConfig(
        hidden_size=preset.vision_hidden,
        intermediate_size=preset.vision_hidden * 2,
        num_hidden_layers=preset.vision_layers,
        num_attention_heads=preset.heads,
        image_size=preset.image_size,
        patch_size=preset.patch_size,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=preset.text_hidden,
        intermediate_size=preset.text_hidden * 2,
        num_hidden_layers=preset.text_layers,
        num_attention_heads=preset.heads,
        num_key_value_heads=preset.heads,
        max_position_embeddings=preset.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(preset.image_size // preset.patch_size) ** 2,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    return LlavaForConditionalGeneration(config), processor


def pretrain(model: LlavaForConditionalGeneration, processor: LlavaProcessor, preset: TinyPreset) -> float:
    """Pre-train every weight on the synthetic shapes stream; returns the final smoothed loss."""
    torch.manual_seed(preset.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.pretrain_lr, weight_decay=0.01)
    warmup = max(1, preset.pretrain_steps // 20)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, preset.pretrain_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    stream = examples(seed=preset.seed, size_px=preset.image_size)
    model.train()
    smoothed = float("nan")
    with progress_bar(f"pre-training base model '{preset.name}'", total=preset.pretrain_steps) as advance:
        for _ in range(preset.pretrain_steps):
            pairs = [TextPair(ex.image, ex.prompt, ex.target) for ex, _ in zip(stream, range(preset.pretrain_batch))]
            batch = encode_batch(processor, pairs)
            labels = batch.pop("labels")
            loss = per_sample_loss(model(**batch).logits, labels).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            smoothed = loss.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss.item()
            advance(loss=smoothed)
    model.eval()
    return smoothed


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: sums then add up in one order, whatever the machine's or caller's thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ensure_base_model(preset_name: str) -> Path:
    """The cached directory of a pre-trained preset, building it first if absent (safe across processes)."""
    preset = get_preset(preset_name)
    fingerprint = preset.fingerprint()
    target = cache_root() / "models" / f"{preset.name}-{fingerprint[:16]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / BUILD_INFO).is_file():
            return target
        with one_torch_thread():
            model, processor = build_untrained(preset)
            final_loss = pretrain(model, processor, preset)
        info = {"preset": preset.name, "fingerprint": fingerprint, "final_loss": final_loss}

        def write(staging: Path) -> None:
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
            (staging / BUILD_INFO).write_text(json.dumps(info, indent=2))

        replace_folder(target, write)
    return target
