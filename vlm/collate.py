"""Turn (image, prompt, target) triples into model batches through the model's own processor."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from PIL import Image

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TextPair:
    """What the model sees (image + prompt) and what it should answer."""

    image: Image.Image
    prompt: str
    target: str


def prompt_text(processor, prompt: str) -> str:
    """The prompt as the processor expects it: image placeholder first, then the question."""
    return f"{processor.image_token}{prompt} answer:"


def _target_text(processor, target: str) -> str:
    return f" {target}{processor.tokenizer.eos_token}"


def _takes_suffix(processor) -> bool:
    """Prefix-LM processors (PaliGemma) encode the target as a suffix with causal attention."""
    return "suffix" in inspect.signature(type(processor).__call__).parameters


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def encode_batch(processor, pairs: list[TextPair]) -> dict[str, torch.Tensor]:
    """Tokenize pairs for teacher forcing; labels mask everything but the target (and its EOS)."""
    images = [pair.image for pair in pairs]
    prompts = [prompt_text(processor, pair.prompt) for pair in pairs]
    processor.tokenizer.padding_side = "right"
    if _takes_suffix(processor):
        batch = processor(
            text=prompts, images=images, suffix=[pair.target for pair in pairs], return_tensors="pt", padding=True
        )
        labels = batch["labels"].clone()
    else:
        full = [p + _target_text(processor, pair.target) for p, pair in zip(prompts, pairs)]
        batch = processor(text=full, images=images, return_tensors="pt", padding=True)
        labels = batch["input_ids"].clone()
        for row, (prompt, image) in enumerate(zip(prompts, images)):
            prompt_ids = processor(text=[prompt], images=[image])["input_ids"][0]
            labels[row, : _common_prefix(list(prompt_ids), batch["input_ids"][row].tolist())] = IGNORE_INDEX
    labels[batch["attention_mask"] == 0] = IGNORE_INDEX
    batch["labels"] = labels
    return dict(batch)


def to_model(batch: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Move a batch to the model's device; floating tensors (pixels) also to its dtype."""
    return {
        key: value.to(model.device, model.dtype) if value.is_floating_point() else value.to(model.device)
        for key, value in batch.items()
    }


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy per sample (HF's batch loss averages over all tokens, coupling samples)."""
    shifted_logits = logits[:, :-1].float()
    shifted_labels = labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(
        shifted_logits.transpose(1, 2), shifted_labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    mask = (shifted_labels != IGNORE_INDEX).float()
    return (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1)


def target_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: summed log-probability of the target tokens, and whether greedy decoding reproduces them."""
    shifted_logits = logits[:, :-1].float()
    shifted_labels = labels[:, 1:]
    mask = shifted_labels != IGNORE_INDEX
    log_probs = torch.log_softmax(shifted_logits, dim=-1)
    safe_labels = shifted_labels.clamp(min=0)
    token_log_probs = log_probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)
    greedy_hit = (shifted_logits.argmax(-1) == safe_labels) | ~mask
    return (token_log_probs * mask).sum(1), greedy_hit.all(1)
