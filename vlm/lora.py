"""LoRA on the language model (and the multimodal projector), never the vision tower, for any VLM."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from vlm.loading import load_base

PROJECTOR_NAMES = ("multi_modal_projector", "connector")


@dataclass(frozen=True)
class LoraSettings:
    """What the [lora] config section sets."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    projector: bool = True
    ffa: bool = False  # FFA-LoRA: A stays at its seeded initialization; only B trains and travels


FROZEN_UNDER_FFA, TRAINED_UNDER_FFA = "lora_A", "lora_B"


def language_model_prefix(model: torch.nn.Module) -> str:
    """Qualified name of the language model (decoder) inside a VLM, e.g. 'model.language_model'."""
    decoder = model.get_decoder()
    for name, module in model.named_modules():
        if module is decoder:
            return name
    raise ValueError(f"{type(model).__name__}: cannot locate the language model")


def projector_linear_names(model: torch.nn.Module) -> list[str]:
    """Qualified names of the linear layers of the vision-to-text projector (empty if there is none)."""
    prefixes = [name for name, _ in model.named_modules() if name.split(".")[-1] in PROJECTOR_NAMES]
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name.startswith(prefix + ".") for prefix in prefixes)
    ]


def target_regex(model: torch.nn.Module, settings: LoraSettings) -> str:
    """A peft target regex matching the language model's named linear layers (and the projector's, if asked)."""
    names = "|".join(re.escape(name) for name in settings.target_modules)
    alternatives = [rf"{re.escape(language_model_prefix(model))}\..*\.({names})"]
    if settings.projector:
        alternatives += [re.escape(name) for name in projector_linear_names(model)]
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
