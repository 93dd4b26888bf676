"""Server-side evaluation of adapters on the held-out server-eval set."""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.utility import score_vqa
from vlm.adapters import adapter_state, load_adapter_state, save_adapter
from vlm.loading import load_base
from vlm.lora import LoraSettings, attach_lora
from vlm.records import load_dataset


class ServerEvaluator:
    """Holds the base model with LoRA and the server-eval records; scores any adapter state."""

    def __init__(self, model_dir: Path, lora: LoraSettings, eval_dir: Path) -> None:
        self.model_dir = model_dir
        model, self.processor = load_base(model_dir)
        torch.manual_seed(0)
        self.model = attach_lora(model, lora)
        self.records, self.load_report = load_dataset(eval_dir)

    def initial_state(self) -> dict[str, torch.Tensor]:
        """The starting adapter (LoRA B = 0, so the model equals the base model)."""
        return adapter_state(self.model)

    def evaluate(self, state: dict[str, torch.Tensor]) -> dict:
        """VQA accuracy with counts, overall and per attribute group."""
        load_adapter_state(self.model, state)
        score = score_vqa(self.model, self.processor, self.records)
        return {
            "vqa_accuracy": score.accuracy,
            "correct": score.correct,
            "total": score.total,
            "groups": score.group_counts(),
        }

    def save(self, state: dict[str, torch.Tensor], out_dir: Path) -> None:
        """Write state as a PEFT adapter directory pointing at the local base model."""
        save_adapter(self.model, state, out_dir, self.model_dir)
