"""One loading path for every base model: a local directory read by transformers' Auto classes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

from vlm.processors import load_processor


def select_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it, float32 otherwise."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def check_model_dir(model_dir: Path | str) -> Path:
    """The directory as a Path, or a clear error if it holds no HF model."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
    return path


def load_base(model_dir: Path | str, device: torch.device | None = None):
    """Load a VLM and its processor from a local directory (never the hub), frozen, on device."""
    path = check_model_dir(model_dir)
    device = device or select_device()
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=compute_dtype(device), local_files_only=True)
    processor = load_processor(path)
    model.requires_grad_(False)
    return model.to(device), processor


def weights_hash(model_dir: Path | str) -> str:
    """SHA-256 over the directory's safetensors files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = sorted(check_model_dir(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no safetensors weights")
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
