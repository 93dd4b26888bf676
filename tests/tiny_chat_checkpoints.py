"""Tiny random-weight checkpoints of the chat-template VLM families, built offline from configs.

Each processor is the family's own class with its PIL image processor and a chat template shaped like the
published one (same turn markers and image entry). Processors that hold a video processor are built
image-only (vlm.processors.image_only_class), as fedvlm loads them without torchvision.
"""

from __future__ import annotations

from transformers import (
    Gemma3Config,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma3TextConfig,
    GotOcr2ImageProcessorPil,
    InternVLConfig,
    InternVLVisionConfig,
    LlavaOnevisionConfig,
    LlavaOnevisionImageProcessorPil,
    Mistral3Config,
    MistralConfig,
    MllamaConfig,
    MllamaImageProcessorPil,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
    PixtralImageProcessorPil,
    PixtralVisionConfig,
    PreTrainedConfig,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2Config,
    Qwen2VLConfig,
    Qwen2VLImageProcessorPil,
    Qwen3VLConfig,
    SiglipVisionConfig,
    SmolVLMConfig,
    SmolVLMImageProcessorPil,
    SmolVLMVisionConfig,
)

from tests.tiny_parts import HIDDEN, IMAGE_SIZE, NUM_PATCHES, PATCH_SIZE, build_tokenizer, llama_config
from vlm.processors import image_only_class

_TEXT = {"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": 2, "num_attention_heads": 4}
_VISION = {**_TEXT, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE}
# ChatML turns (Qwen, LLaVA-OneVision, InternVL); IMAGE stands for the family's image entry.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}IMAGE{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>")
_QWEN_SPECIAL = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "image_token": "<|image_pad|>"}
_QWEN_MERGE = 2


def _token_ids(tokenizer: PreTrainedTokenizerFast, **tokens: str) -> dict[str, int]:
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in tokens.items()}


def _qwen_text(tokenizer: PreTrainedTokenizerFast, mrope_section: list[int], interleaved: bool = False) -> dict:
    """Text config kwargs of a tiny Qwen language model with multimodal rotary sections (head dim 8)."""
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section}
    if interleaved:
        rope["mrope_interleaved"] = True
    return {
        **_TEXT,
        "vocab_size": len(tokenizer),
        "num_key_value_heads": 2,
        "head_dim": HIDDEN // 4,
        "rope_parameters": rope,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
    }


def _qwen_processor(tokenizer: PreTrainedTokenizerFast, class_name: str, patch_size: int) -> ProcessorMixin:
    pixels = (IMAGE_SIZE // 2) ** 2
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": IMAGE_SIZE**2}, patch_size=patch_size, merge_size=_QWEN_MERGE
    )
    template = _CHATML.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>")
    return image_only_class(class_name)(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=template
    )


def _qwen_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer(_QWEN_SPECIAL, _QWEN_TOKENS, add_bos=False)


def _qwen_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return _token_ids(
        tokenizer,
        image_token_id="<|image_pad|>",
        video_token_id="<|video_pad|>",
        vision_start_token_id="<|vision_start|>",
        vision_end_token_id="<|vision_end|>",
    )


def _qwen_vision(out_hidden: str) -> dict:
    return {
        "depth": 1,
        "num_heads": 4,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": _QWEN_MERGE,
        "temporal_patch_size": 2,
        out_hidden: HIDDEN,
    }


def qwen2_vl() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Qwen2-VL: ViT with 2x2 patch merger (visual.merger) + Qwen2 with M-RoPE; ChatML."""
    tokenizer = _qwen_tokenizer()
    config = Qwen2VLConfig(
        vision_config={**_qwen_vision("hidden_size"), "embed_dim": HIDDEN, "mlp_ratio": 2},
        text_config=_qwen_text(tokenizer, [1, 1, 2]),
        **_qwen_ids(tokenizer),
    )
    return config, _qwen_processor(tokenizer, "Qwen2VLProcessor", PATCH_SIZE)


def qwen2_5_vl() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Qwen2.5-VL: windowed-attention ViT + merger + Qwen2 with M-RoPE; ChatML."""
    tokenizer = _qwen_tokenizer()
    vision = {
        **_qwen_vision("out_hidden_size"),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "window_size": IMAGE_SIZE,
        "fullatt_block_indexes": [0],
    }
    config = Qwen2_5_VLConfig(
        vision_config=vision, text_config=_qwen_text(tokenizer, [1, 1, 2]), **_qwen_ids(tokenizer)
    )
    return config, _qwen_processor(tokenizer, "Qwen2_5_VLProcessor", PATCH_SIZE)


def qwen3_vl() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Qwen3-VL: ViT with deepstack mergers + Qwen3 with interleaved M-RoPE; ChatML."""
    tokenizer = _qwen_tokenizer()
    vision = {
        **_qwen_vision("out_hidden_size"),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_position_embeddings": NUM_PATCHES,
        "deepstack_visual_indexes": [0],
    }
    text = _qwen_text(tokenizer, [2, 1, 1], interleaved=True)
    config = Qwen3VLConfig(vision_config=vision, text_config=text, **_qwen_ids(tokenizer))
    return config, _qwen_processor(tokenizer, "Qwen3VLProcessor", PATCH_SIZE)


def gemma3() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Gemma 3 / MedGemma: SigLIP + average-pool projector (no linear layer) + Gemma 3; Gemma turns."""
    tokenizer = build_tokenizer(
        {
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "image_token": "<image_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
        ("<start_of_turn>", "<end_of_turn>"),
        add_bos=True,
    )
    tokens_per_image = NUM_PATCHES // 4
    template = (
        "{{ bos_token }}{% for m in messages %}"
        "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<start_of_image>{% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        chat_template=template,
        image_seq_length=tokens_per_image,
    )
    text = Gemma3TextConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        num_key_value_heads=1,
        head_dim=HIDDEN // 4,
        sliding_window=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=SiglipVisionConfig(**_VISION, vision_use_head=False),
        mm_tokens_per_image=tokens_per_image,
        **_token_ids(
            tokenizer,
            boi_token_index="<start_of_image>",
            eoi_token_index="<end_of_image>",
            image_token_index="<image_soft_token>",
        ),
    )
    return config, processor


def smolvlm() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """SmolVLM: SigLIP-like tower + pixel-shuffle connector + SmolLM2 (Llama); 'User:'/'Assistant:' turns."""
    tokenizer = build_tokenizer(
        {
            "bos_token": "<|im_start|>",
            "eos_token": "<end_of_utterance>",
            "pad_token": "<|pad|>",
            "unk_token": "<unk>",
            "image_token": "<image>",
        },
        ("<fake_token_around_image>", "<global-img>", "<video>")
        + tuple(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
        add_bos=False,
    )
    scale = 2
    template = (
        "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
        "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    image_processor = SmolVLMImageProcessorPil(
        size={"longest_edge": IMAGE_SIZE}, max_image_size={"longest_edge": IMAGE_SIZE}, do_image_splitting=False
    )
    processor = image_only_class("SmolVLMProcessor")(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        image_seq_len=NUM_PATCHES // scale**2,
        chat_template=template,
    )
    config = SmolVLMConfig(
        vision_config=SmolVLMVisionConfig(**_VISION),
        text_config=llama_config(tokenizer),
        scale_factor=scale,
        image_token_id=tokenizer.image_token_id,
    )
    return config, processor


def llava_onevision() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """LLaVA-OneVision: SigLIP + 2-layer MLP projector + Qwen2, any-resolution tiles; ChatML."""
    tokenizer = build_tokenizer(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "image_token": "<image>"},
        ("<|im_start|>", "<|im_end|>", "<video>"),
        add_bos=False,
    )
    pinpoints = [[IMAGE_SIZE, IMAGE_SIZE], [IMAGE_SIZE, 2 * IMAGE_SIZE], [2 * IMAGE_SIZE, IMAGE_SIZE]]
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=pinpoints
    )
    processor = image_only_class("LlavaOnevisionProcessor")(
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_image_tokens=NUM_PATCHES,
        vision_feature_select_strategy="full",
        chat_template=_CHATML.replace("IMAGE", "<image>\n"),
    )
    text = Qwen2Config(
        **_TEXT,
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(**_VISION, vision_use_head=False),
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    return config, processor


def mistral3() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Mistral 3 (Small 3.1): Pixtral tower + patch-merger projector + Mistral; [INST] turns."""
    tokenizer = build_tokenizer(
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
        ("[IMG]", "[IMG_BREAK]", "[IMG_END]", "[INST]", "[/INST]"),
        add_bos=True,
    )
    merge = 2
    template = (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST]{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}[IMG]{% else %}{{ c['text'] }}{% endif %}{% endfor %}[/INST]"
        "{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{{ eos_token }}{% endif %}{% endfor %}"
    )
    processor = image_only_class("PixtralProcessor")(
        image_processor=PixtralImageProcessorPil(size={"longest_edge": IMAGE_SIZE}, patch_size=PATCH_SIZE),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        spatial_merge_size=merge,
        chat_template=template,
    )
    text = MistralConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        head_dim=HIDDEN // 4,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = Mistral3Config(
        vision_config=PixtralVisionConfig(**_VISION, head_dim=HIDDEN // 4),
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=merge,
        vision_feature_layer=-1,
    )
    return config, processor


def internvl() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """InternVL 3: InternViT + pixel-shuffle MLP projector + Qwen2; ChatML with <IMG_CONTEXT>."""
    tokenizer = build_tokenizer(
        {
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
        ("<|im_start|>", "<|im_end|>"),
        add_bos=False,
    )
    downsample = 0.5
    processor = image_only_class("InternVLProcessor")(
        image_processor=GotOcr2ImageProcessorPil(
            size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=False
        ),
        tokenizer=tokenizer,
        image_seq_length=int(NUM_PATCHES * downsample**2),
        chat_template=_CHATML.replace("IMAGE", "<IMG_CONTEXT>\n"),
    )
    text = Qwen2Config(
        **_TEXT,
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = InternVLVisionConfig(
        **{**_VISION, "image_size": [IMAGE_SIZE, IMAGE_SIZE], "patch_size": [PATCH_SIZE, PATCH_SIZE]}
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=int(NUM_PATCHES * downsample**2),
        downsample_ratio=downsample,
    )
    return config, processor


def mllama() -> tuple[PreTrainedConfig, ProcessorMixin]:
    """Llama 3.2 Vision (Mllama): tiled ViT + one linear projector + Llama with cross-attention layers."""
    tokenizer = build_tokenizer(
        {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "pad_token": "<|finetune_right_pad_id|>",
            "image_token": "<|image|>",
        },
        ("<|start_header_id|>", "<|end_header_id|>", "<|python_tag|>"),
        add_bos=True,
    )
    template = (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|image|>{% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    )
    image_processor = MllamaImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, max_image_tiles=1)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    vision = MllamaVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_global_layers=1,
        attention_heads=4,
        intermediate_layers_indices=[0],
        vision_output_dim=2 * HIDDEN,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        max_num_tiles=1,
        supported_aspect_ratios=[[1, 1]],
    )
    text = MllamaTextConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        cross_attention_layers=[1],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.image_token_id)
    return config, processor
