"""Server-side evaluation of adapters on the held-out server-eval set."""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.utility import score_vqa
from storage.durable import replace_folder
from vlm.adapters import adapter_state, load_adapter_state, save_adapter
from vlm.attributes import DEFAULT_MIN_GROUP_SIZE, AttributeSchema
from vlm.lora import LoraSettings, load_with_lora
from vlm.records import load_dataset


class ServerEvaluator:
    """Holds the base model with LoRA and the server-eval records; scores any adapter state."""

    def __init__(
        self,
        model_dir: Path,
        lora: LoraSettings,
        eval_dir: Path,
        schema: AttributeSchema | None = None,
        min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    ) -> None:
        self.model_dir = model_dir
        self.model, self.processor = load_with_lora(model_dir, lora)
        self.records, _ = load_dataset(eval_dir, schema)
        self.min_group_size = min_group_size

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
            "groups": score.group_counts(self.min_group_size),
        }

    def publish(self, state: dict[str, torch.Tensor], out_dir: Path) -> None:
        """Replace out_dir with state as a PEFT adapter directory, never leaving a half-written one."""
        replace_folder(out_dir, lambda staging: save_adapter(self.model, state, staging, self.model_dir))
