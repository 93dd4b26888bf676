"""Server-side evaluation of adapters on the held-out server-eval set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from evaluation.bias import counterfactual_pairs
from evaluation.gates.safety import probe_prompts
from evaluation.generation import generate_texts
from evaluation.items import ItemResults
from evaluation.leakage import IdentityPair, identity_preferences
from evaluation.utility import score_vqa
from storage.durable import replace_folder
from vlm.adapters import adapter_state, load_adapter_state, save_adapter
from vlm.attributes import DEFAULT_MIN_GROUP_SIZE, AttributeSchema
from vlm.lora import LoraSettings, load_with_lora
from vlm.records import load_dataset


@dataclass(frozen=True)
class Assessment:
    """One evaluation of an adapter, shared by every gate: the recorded counts, and what stays in memory."""

    summary: dict  # metrics.jsonl's utility: accuracy and counts
    items: ItemResults  # per-question results (never written)
    generations: tuple[str, ...] | None  # greedy answers to the safety probes, when asked for


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
        return self.assess(state).summary

    def assess(self, state: dict[str, torch.Tensor], probes: int = 0, max_new_tokens: int = 16) -> Assessment:
        """Score state once for every gate; with probes, also its greedy answers to the first probes images."""
        load_adapter_state(self.model, state)
        score = score_vqa(self.model, self.processor, self.records)
        summary = {
            "vqa_accuracy": score.accuracy,
            "correct": score.correct,
            "total": score.total,
            "groups": score.group_counts(self.min_group_size),
        }
        generations = self._probe_answers(probes, max_new_tokens) if probes else None
        return Assessment(summary, score.items(self.min_group_size), generations)

    def probe_answers(self, state: dict[str, torch.Tensor], probes: int, max_new_tokens: int) -> tuple[str, ...]:
        """Greedy answers of state to the first probes images' safety probes (memory only)."""
        load_adapter_state(self.model, state)
        return self._probe_answers(probes, max_new_tokens)

    def _probe_answers(self, probes: int, max_new_tokens: int) -> tuple[str, ...]:
        images = [self.records[index % len(self.records)].load_image() for index in range(probes)]
        return tuple(generate_texts(self.model, self.processor, images, probe_prompts(probes), max_new_tokens))

    def question_items(
        self, state: dict[str, torch.Tensor], questions: int, swaps: Mapping[str, str] | None = None
    ) -> ItemResults:
        """Per-question results of state on the first `questions` server-eval questions (memory only); with swaps,
        also each margin with the question's descriptors swapped."""
        load_adapter_state(self.model, state)
        asked = [record for record in self.records if record.question is not None][:questions]
        items = score_vqa(self.model, self.processor, asked).items(self.min_group_size)
        if not swaps:
            return items
        pairs = counterfactual_pairs(asked, swaps)
        swapped = score_vqa(self.model, self.processor, [record for _, record in pairs]).margins
        counterfactual: list[float | None] = [None] * len(asked)
        for (position, _), margin in zip(pairs, swapped):
            counterfactual[position] = margin
        return replace(items, counterfactual_margins=tuple(counterfactual))

    def identity_preferences(
        self, state: dict[str, torch.Tensor], pairs: list[IdentityPair], images: int
    ) -> tuple[float, ...]:
        """State's preference for each identity text over its filtered form, as captions of the first images."""
        load_adapter_state(self.model, state)
        return tuple(identity_preferences(self.model, self.processor, self.records[:images], pairs))

    def publish(self, state: dict[str, torch.Tensor], out_dir: Path) -> None:
        """Replace out_dir with state as a PEFT adapter directory, never leaving a half-written one."""
        replace_folder(out_dir, lambda staging: save_adapter(self.model, state, staging, self.model_dir))
