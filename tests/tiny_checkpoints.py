"""Tiny random-weight VLM checkpoints built offline from transformers configs.

Every checkpoint is built from config classes with tiny sizes, a locally trained
byte-level BPE tokenizer and the architecture's real processor class (with the
PIL image processor, so no torchvision is needed). Nothing touches the Hub.
LLaVA, LLaVA-NeXT, PaliGemma and Idefics3 are built here without a chat template
(the plain prompt path); the chat-template families in tests/tiny_chat_checkpoints.py.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import torch
from transformers import (
    AutoModelForImageTextToText,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    GemmaConfig,
    Idefics3Config,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    LlavaConfig,
    LlavaNextConfig,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    LlavaProcessor,
    PaliGemmaConfig,
    PaliGemmaProcessor,
    PreTrainedConfig,
    ProcessorMixin,
    SiglipImageProcessorPil,
    SiglipVisionConfig,
)
from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig

from tests import tiny_chat_checkpoints
from tests.tiny_parts import (
    HIDDEN,
    IMAGE_SIZE,
    IMAGE_TOKEN,
    LLAMA_SPECIAL,
    NUM_PATCHES,
    PATCH_SIZE,
    SEED,
    build_tokenizer,
    llama_config,
)

ARCHITECTURES: tuple[str, ...] = (
    "llava",
    "llava_next",
    "paligemma",
    "idefics3",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "gemma3",
    "smolvlm",
    "llava_onevision",
    "mistral3",
    "internvl",
    "mllama",
)

IDEFICS3_SCALE_FACTOR = 2
# Idefics3Processor looks all of these up in the vocabulary (row/col tags are used when splitting images).
IDEFICS3_EXTRA_TOKENS = ("<fake_token_around_image>", "<global-img>", "<end_of_utterance>") + tuple(
    f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)
)
LLAVA_NEXT_GRID_PINPOINTS = [[32, 64], [64, 32], [64, 64]]


def _clip_vision_config() -> CLIPVisionConfig:
    """Tiny CLIP vision tower (adds a CLS token to the patch tokens)."""
    return CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        projection_dim=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )


def _clip_image_kwargs() -> dict[str, object]:
    """CLIP-style resize/crop to the tiny image size."""
    return {"size": {"shortest_edge": IMAGE_SIZE}, "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}}


def _llava() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """LLaVA-1.5 style: CLIP vision tower + Llama, CLS dropped ("default" strategy)."""
    tokenizer = build_tokenizer({**LLAMA_SPECIAL, "image_token": IMAGE_TOKEN}, (), add_bos=True)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(**_clip_image_kwargs()),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        vision_config=_clip_vision_config(),
        text_config=llama_config(tokenizer),
        image_token_index=tokenizer.image_token_id,
        image_seq_length=NUM_PATCHES,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    return config, processor


def _llava_next() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """LLaVA-NeXT: like LLaVA plus any-resolution tiling over a small grid of pinpoints."""
    tokenizer = build_tokenizer({**LLAMA_SPECIAL, "image_token": IMAGE_TOKEN}, (), add_bos=True)
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessorPil(
            **_clip_image_kwargs(), image_grid_pinpoints=LLAVA_NEXT_GRID_PINPOINTS
        ),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    config = LlavaNextConfig(
        vision_config=_clip_vision_config(),
        text_config=llama_config(tokenizer),
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=LLAVA_NEXT_GRID_PINPOINTS,
        image_seq_length=NUM_PATCHES,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    return config, processor


def _paligemma() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """PaliGemma: SigLIP vision tower (no head) + Gemma, one image token per patch."""
    tokenizer = build_tokenizer(
        {
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "image_token": IMAGE_TOKEN,
        },
        (),
        add_bos=True,  # like Gemma's tokenizer; PaliGemmaProcessor turns it off and inserts <bos> itself
    )
    image_processor = SiglipImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_seq_length=NUM_PATCHES
    )
    # The processor appends 1024 <locXXXX> + 128 <segXXX> tokens, so build it before sizing the vocab.
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    text_config = GemmaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=HIDDEN // 4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision_config = SiglipVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        vision_use_head=False,
    )
    config = PaliGemmaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.image_token_id,
        vocab_size=len(tokenizer),
        projection_dim=HIDDEN,
        hidden_size=HIDDEN,
    )
    return config, processor


def _idefics3() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Idefics3: SigLIP-like vision tower + pixel-shuffle connector + Llama, no image splitting."""
    tokenizer = build_tokenizer(
        {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|end_of_text|>",
            "pad_token": "<|pad|>",
            "unk_token": "<unk>",
            "image_token": IMAGE_TOKEN,
        },
        IDEFICS3_EXTRA_TOKENS,
        add_bos=True,
    )
    image_seq_len = NUM_PATCHES // IDEFICS3_SCALE_FACTOR**2
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(
            size={"longest_edge": IMAGE_SIZE},
            max_image_size={"longest_edge": IMAGE_SIZE},
            do_image_splitting=False,
        ),
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
    )
    vision_config = Idefics3VisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    config = Idefics3Config(
        vision_config=vision_config,
        text_config=llama_config(tokenizer),
        image_token_id=tokenizer.image_token_id,
        scale_factor=IDEFICS3_SCALE_FACTOR,
    )
    return config, processor


_BUILDERS: dict[str, Callable[[], tuple[PreTrainedConfig, ProcessorMixin]]] = {
    "llava": _llava,
    "llava_next": _llava_next,
    "paligemma": _paligemma,
    "idefics3": _idefics3,
    "qwen2_vl": tiny_chat_checkpoints.qwen2_vl,
    "qwen2_5_vl": tiny_chat_checkpoints.qwen2_5_vl,
    "qwen3_vl": tiny_chat_checkpoints.qwen3_vl,
    "gemma3": tiny_chat_checkpoints.gemma3,
    "smolvlm": tiny_chat_checkpoints.smolvlm,
    "llava_onevision": tiny_chat_checkpoints.llava_onevision,
    "mistral3": tiny_chat_checkpoints.mistral3,
    "internvl": tiny_chat_checkpoints.internvl,
    "mllama": tiny_chat_checkpoints.mllama,
}


def build_tiny_checkpoint(arch: str, out_dir: pathlib.Path) -> pathlib.Path:
    """Build a tiny random-weight VLM of that architecture from configs.

    The model and its processor are written with `save_pretrained` into `out_dir`, which is returned.
    """
    if arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    out_dir = pathlib.Path(out_dir)
    config, processor = _BUILDERS[arch]()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = AutoModelForImageTextToText.from_config(config)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
