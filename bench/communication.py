"""Communication cost: the LoRA adapter fedvlm sends per round vs the full model it would otherwise send.

The published configurations are built from their dimensions (below) on the meta device: no weights are
allocated and nothing is downloaded. The tiny preset row uses the real cached pre-trained model. Adapters
travel as float32; the ratio's denominator is the full model in the dtype its checkpoint is shipped in.

Run: python -m bench.communication   (exits 1 if a checked model's ratio exceeds LIMIT_PERCENT)
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from peft import PeftModel, get_peft_model_state_dict
from rich.console import Console
from rich.table import Table
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    Gemma3Config,
    Gemma3TextConfig,
    Idefics3Config,
    Idefics3VisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaNextConfig,
    MistralConfig,
    PretrainedConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLTextConfig,
    SiglipVisionConfig,
)
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig

from vlm.adapters import adapter_state, state_bytes
from vlm.base_model import ensure_base_model
from vlm.loading import load_base
from vlm.lora import PROJECTOR_NAMES, LoraSettings, attach_lora, projector_linear_names

LIMIT_PERCENT = 0.2
WIRE_DTYPE = torch.float32  # what vlm.adapters.adapter_state sends

CLIP_VIT_L_14_336: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
}

# Published dimensions (from each checkpoint's config.json); "classes" = (model, vision, text) config classes.
PUBLISHED: dict[str, dict[str, Any]] = {
    "LLaVA-1.5-7B": {
        "checkpoint": "llava-hf/llava-1.5-7b-hf",
        "shipped_dtype": torch.float16,
        "checked": True,
        "classes": (LlavaConfig, CLIPVisionConfig, LlamaConfig),
        "vision": CLIP_VIT_L_14_336,
        "text": {  # vicuna-7b-v1.5
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "vocab_size": 32064,
            "tie_word_embeddings": False,
        },
        "model": {"image_token_index": 32000, "vision_feature_layer": -2},
    },
    "LLaVA-NeXT-Mistral-7B": {
        "checkpoint": "llava-hf/llava-v1.6-mistral-7b-hf",
        "shipped_dtype": torch.float16,
        "checked": True,
        "classes": (LlavaNextConfig, CLIPVisionConfig, MistralConfig),
        "vision": CLIP_VIT_L_14_336,
        "text": {  # Mistral-7B-Instruct-v0.2
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 32064,
            "tie_word_embeddings": False,
        },
        "model": {
            "image_token_index": 32000,
            "vision_feature_layer": -2,
            "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        },
    },
    "SmolVLM-256M": {
        "checkpoint": "HuggingFaceTB/SmolVLM-256M-Instruct",
        "shipped_dtype": torch.bfloat16,
        "checked": False,
        "classes": (Idefics3Config, Idefics3VisionConfig, LlamaConfig),
        "vision": {  # SigLIP base, patch 16, 512 px
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 512,
            "patch_size": 16,
        },
        "text": {  # SmolLM2-135M, with an untied lm_head
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "vocab_size": 49280,
            "tie_word_embeddings": False,
        },
        "model": {"scale_factor": 4, "image_token_id": 49190},
    },
    "Qwen2.5-VL-7B": {
        "checkpoint": "Qwen/Qwen2.5-VL-7B-Instruct",
        "shipped_dtype": torch.bfloat16,
        "checked": True,
        "classes": (Qwen2_5_VLConfig, Qwen2_5_VLVisionConfig, Qwen2_5_VLTextConfig),
        "vision": {  # windowed ViT; the projector is visual.merger (2 Linear)
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
        "text": {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "tie_word_embeddings": False,
        },
        "model": {"image_token_id": 151655, "video_token_id": 151656, "tie_word_embeddings": False},
    },
    "Gemma-3-4B (MedGemma-4B)": {
        "checkpoint": "google/gemma-3-4b-it, google/medgemma-4b-it",
        "shipped_dtype": torch.bfloat16,
        "checked": False,
        "classes": (Gemma3Config, SiglipVisionConfig, Gemma3TextConfig),
        "vision": {  # SigLIP so400m, 896 px; the projector has no Linear (pooling, norm, bare weight)
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "image_size": 896,
            "patch_size": 14,
            "vision_use_head": False,
        },
        "text": {  # embeddings tied to the lm_head
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "num_hidden_layers": 34,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "query_pre_attn_scalar": 256,
            "sliding_window": 1024,
            "vocab_size": 262208,
        },
        "model": {"mm_tokens_per_image": 256, "boi_token_index": 255999, "eoi_token_index": 256000},
    },
}


@dataclass(frozen=True)
class Row:
    """One model's measurements."""

    name: str
    params: int
    shipped_dtype: torch.dtype
    adapter_params: int
    adapter_bytes: int
    projector_layers: tuple[str, ...]
    checked: bool

    def model_bytes(self, dtype: torch.dtype) -> int:
        """Bytes of every parameter in dtype."""
        return self.params * dtype.itemsize

    @property
    def ratio_percent(self) -> float:
        """Adapter bytes as a percentage of the model's shipped bytes."""
        return 100 * self.adapter_bytes / self.model_bytes(self.shipped_dtype)

    @property
    def over_limit(self) -> bool:
        """A checked model whose ratio exceeds LIMIT_PERCENT."""
        return self.checked and self.ratio_percent > LIMIT_PERCENT


def build_config(spec: dict[str, Any]) -> PretrainedConfig:
    """A transformers config from a PUBLISHED entry."""
    model_cls, vision_cls, text_cls = spec["classes"]
    return model_cls(vision_config=vision_cls(**spec["vision"]), text_config=text_cls(**spec["text"]), **spec["model"])


def count_params(model: torch.nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def adapter_numel(peft_model: PeftModel) -> int:
    """Elements of the adapter tensors fedvlm exchanges (works on meta tensors)."""
    return sum(t.numel() for t in get_peft_model_state_dict(peft_model).values())


def measure_published(name: str, spec: dict[str, Any]) -> Row:
    """Instantiate a published configuration on the meta device, attach fedvlm's LoRA and count."""
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(build_config(spec))
    params, projector = count_params(model), tuple(projector_linear_names(model))
    adapter_params = adapter_numel(attach_lora(model, LoraSettings()))
    adapter_bytes = adapter_params * WIRE_DTYPE.itemsize
    return Row(name, params, spec["shipped_dtype"], adapter_params, adapter_bytes, projector, spec["checked"])


def measure_tiny() -> Row:
    """The cached tiny preset, with the adapter state fedvlm really sends."""
    model_dir = ensure_base_model("tiny")
    model, _ = load_base(model_dir, torch.device("cpu"))
    params, projector = count_params(model), tuple(projector_linear_names(model))
    state = adapter_state(attach_lora(model, LoraSettings()))
    adapter_params = sum(t.numel() for t in state.values())
    shipped_dtype = AutoConfig.from_pretrained(model_dir, local_files_only=True).dtype
    return Row("tiny (preset)", params, shipped_dtype, adapter_params, state_bytes(state), projector, checked=False)


def human_bytes(n: int) -> str:
    """Decimal SI units: 14.13 GB."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{n} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{value:.2f} TB"


def projector_summary(names: tuple[str, ...]) -> str:
    """E.g. 'multi_modal_projector (2 Linear)': where attach_lora found the projector."""
    if not names:
        return "none found"
    roots = sorted({next(part for part in name.split(".") if part in PROJECTOR_NAMES) for name in names})
    return f"{', '.join(roots)} ({len(names)} Linear)"


def render(rows: list[Row]) -> Table:
    """The results as a rich table."""
    table = Table(
        title=f"Communication per round: LoRA r={LoraSettings().r} adapter vs full model",
        caption=(
            "Ratio = adapter bytes (float32, as sent) / full-model bytes in the shipped dtype. "
            f"Checked models (*) must stay ≤ {LIMIT_PERCENT}%. Units are decimal (1 GB = 10⁹ B)."
        ),
    )
    for column in ("Model", "Params", "Full fp32", "Full 16-bit", "Shipped", "Adapter params", "Adapter fp32"):
        table.add_column(column, justify="left" if column == "Model" else "right")
    table.add_column("Projector (LoRA)")
    table.add_column("Ratio %", justify="right")
    for row in rows:
        table.add_row(
            row.name + (" *" if row.checked else ""),
            f"{row.params:,}",
            human_bytes(row.model_bytes(torch.float32)),
            human_bytes(row.model_bytes(torch.bfloat16)),
            str(row.shipped_dtype).removeprefix("torch."),
            f"{row.adapter_params:,}",
            human_bytes(row.adapter_bytes),
            projector_summary(row.projector_layers),
            f"[{'red' if row.over_limit else 'green'}]{row.ratio_percent:.3f}[/]",
        )
    return table


def main() -> int:
    """Measure every model, print the table, and return 1 if a checked ratio is over the limit."""
    start = time.perf_counter()
    rows = [measure_tiny()] + [measure_published(name, spec) for name, spec in PUBLISHED.items()]
    table, console = render(rows), Console()
    natural = console.measure(table, options=console.options.update_width(1000)).maximum
    console.width = max(console.width, natural)  # never wrap cells, even when piped (80 columns)
    console.print(table)
    console.print(f"measured in {time.perf_counter() - start:.1f} s")
    over = [row.name for row in rows if row.over_limit]
    if over:
        console.print(f"[red]over the {LIMIT_PERCENT}% limit: {', '.join(over)}[/]")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
