"""LoRA on the language model (and the multimodal projector), never the vision tower, for any VLM."""

from __future__ import annotations

import logging
import re
import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import BaseModel, ConfigDict, Field

from vlm.loading import load_base

# The vision-to-text projector's module name per family: LLaVA, LLaVA-NeXT/OneVision, PaliGemma, Gemma 3, Mistral 3,
# InternVL, Mllama: multi_modal_projector; Idefics3, SmolVLM: connector; Qwen2/2.5/3-VL: visual.merger (and
# Qwen3-VL's deepstack mergers, which project intermediate vision layers into the language model).
PROJECTOR_NAMES = ("multi_modal_projector", "connector", "merger", "deepstack_merger_list")

logger = logging.getLogger(__name__)


class LoraSettings(BaseModel):
    """The [lora] section: LoRA adapters (language model attention and the projector by default; never the
    vision tower)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    projector: bool = True
    ffa: bool = False  # FFA-LoRA: A stays at its seeded initialization; only B trains and travels

    def __hash__(self) -> int:
        """By value (its JSON), so that a process can cache the model it built with these settings."""
        return hash(self.model_dump_json())


FROZEN_UNDER_FFA, TRAINED_UNDER_FFA = "lora_A", "lora_B"


def language_model_prefix(model: torch.nn.Module) -> str:
    """Qualified name of the language model (decoder) inside a VLM, e.g. 'model.language_model'."""
    decoder = model.get_decoder()
    for name, module in model.named_modules():
        if module is decoder:
            return name
    raise ValueError(f"{type(model).__name__}: cannot locate the language model")


def projector_linear_names(model: torch.nn.Module) -> list[str]:
    """Qualified names of the linear layers of the vision-to-text projector (empty if there is none).

    The projector may itself be one linear layer (Mllama) or hold none (Gemma 3 multiplies by a bare weight).
    """
    prefixes = [name for name, _ in model.named_modules() if name.split(".")[-1] in PROJECTOR_NAMES]
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)
    ]


def target_regex(model: torch.nn.Module, settings: LoraSettings) -> str:
    """A peft target regex matching the language model's named linear layers (and the projector's, if asked)."""
    names = "|".join(re.escape(name) for name in settings.target_modules)
    alternatives = [rf"{re.escape(language_model_prefix(model))}\..*\.({names})"]
    if settings.projector:
        projector = projector_linear_names(model)
        if not projector:
            logger.warning(
                "lora.projector = true, but %s has no linear layer in a vision-to-text projector: "
                "only the language model is adapted",
                type(model).__name__,
            )
        alternatives += [re.escape(name) for name in projector]
    return "^(?:" + "|".join(alternatives) + ")$"


def attach_lora(model: torch.nn.Module, settings: LoraSettings) -> PeftModel:
    """Wrap model with fresh LoRA adapters (seed the RNG first for reproducible A matrices)."""
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_regex(model, settings),
        bias="none",
    )
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config)
    if not any(p.requires_grad for p in peft_model.parameters()):
        raise ValueError(f"LoRA targets {settings.target_modules} matched no layer of the language model")
    if settings.ffa:
        for name, parameter in peft_model.named_parameters():
            if f".{FROZEN_UNDER_FFA}." in name:
                parameter.requires_grad_(False)
    return peft_model


def load_with_lora(model_dir, settings: LoraSettings):
    """A local base model with fresh LoRA attached (seeded: every party starts from the same A matrices)."""
    model, processor = load_base(model_dir)
    torch.manual_seed(0)
    return attach_lora(model, settings), processor
