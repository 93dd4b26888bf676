"""Adapter tensors: what travels (float32 state dicts) and how they are saved (PEFT format)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict

from vlm.lora import FROZEN_UNDER_FFA, TRAINED_UNDER_FFA


def _travelling(model: PeftModel) -> dict[str, torch.Tensor]:
    """The adapter tensors that travel: all of them, but FFA-LoRA's A matrices (frozen while B trains) stay home."""
    state = get_peft_model_state_dict(model)
    trains = {kind: False for kind in (FROZEN_UNDER_FFA, TRAINED_UNDER_FFA)}
    for name, parameter in model.named_parameters():
        for kind in trains:
            trains[kind] |= parameter.requires_grad and f".{kind}." in name
    if trains[TRAINED_UNDER_FFA] and not trains[FROZEN_UNDER_FFA]:
        return {key: value for key, value in state.items() if f".{FROZEN_UNDER_FFA}." not in key}
    return state


def adapter_state(model: PeftModel) -> dict[str, torch.Tensor]:
    """The trainable adapter tensors as float32 CPU copies, in peft's key names (no base weights)."""
    return {key: value.detach().to("cpu", torch.float32).clone() for key, value in _travelling(model).items()}


def load_adapter_state(model: PeftModel, state: dict[str, torch.Tensor]) -> None:
    """Copy adapter tensors into model; refuses missing or unexpected keys and shape mismatches."""
    expected = _travelling(model)
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or unexpected:
        raise ValueError(f"adapter keys differ: {len(missing)} missing, {len(unexpected)} unexpected")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"adapter tensor {key}: shape {tuple(value.shape)} != {tuple(expected[key].shape)}")
    set_peft_model_state_dict(model, state)


def state_bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes of the tensors' payload."""
    return sum(t.numel() * t.element_size() for t in state.values())


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over keys, shapes and float32 bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu", torch.float32).contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_adapter(model: PeftModel, state: dict[str, torch.Tensor], out_dir: Path, base_model_dir: Path) -> None:
    """Write state in PEFT's format with base_model_name_or_path pointing at the local base model."""
    load_adapter_state(model, state)
    model.peft_config["default"].base_model_name_or_path = str(Path(base_model_dir).resolve())
    model.save_pretrained(out_dir, safe_serialization=True)
