"""Turn (image, prompt, target) triples into model batches through the model's own processor."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from PIL import Image

IGNORE_INDEX = -100
# Some processors pad on the left by default (InternVL); labels and the prompt lengths assume the right.
_RIGHT_PADDED = {"return_tensors": "pt", "padding": True, "padding_side": "right"}


@dataclass(frozen=True)
class TextPair:
    """What the model sees (image + prompt) and what it should answer."""

    image: Image.Image
    prompt: str
    target: str


def _user_turn(prompt: str) -> dict:
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def _assistant_turn(target: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": target}]}


def has_chat_template(processor) -> bool:
    """Whether the processor formats prompts with its own chat template (the tiny preset has none)."""
    return bool(getattr(processor, "chat_template", None))


def prompt_text(processor, prompt: str, answer_start: str = "") -> str:
    """The prompt as the model reads it: its chat template with one image entry, else placeholder first; with
    answer_start, followed by the answer's first words as training lays out a whole answer (its text cut there)."""
    if answer_start:
        whole = _full_text(processor, prompt, answer_start)
        return whole[: whole.rindex(answer_start) + len(answer_start)]
    if has_chat_template(processor):
        return processor.apply_chat_template([_user_turn(prompt)], add_generation_prompt=True, tokenize=False)
    return f"{processor.image_token}{prompt} answer:"


def _full_text(processor, prompt: str, target: str) -> str:
    """Prompt and target as one teacher-forcing text (the chat template closes the answer's turn)."""
    if has_chat_template(processor):
        return processor.apply_chat_template([_user_turn(prompt), _assistant_turn(target)], tokenize=False)
    return f"{prompt_text(processor, prompt)} {target}{processor.tokenizer.eos_token}"


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


def process(processor, texts: list[str], images: list[Image.Image], **kwargs):
    """Call the processor with one image list per text (a flat list reads as one sample's images).

    A chat template that writes the BOS itself gets no second one from the tokenizer.
    """
    bos = processor.tokenizer.bos_token
    if bos and all(text.startswith(bos) for text in texts):
        kwargs["add_special_tokens"] = False
    return processor(text=texts, images=[[image] for image in images], **kwargs)


def encode_batch(processor, pairs: list[TextPair]) -> dict[str, torch.Tensor]:
    """Tokenize pairs for teacher forcing; labels mask everything but the target (and its end token)."""
    images = [pair.image for pair in pairs]
    prompts = [prompt_text(processor, pair.prompt) for pair in pairs]
    if _takes_suffix(processor):
        batch = process(processor, prompts, images, suffix=[pair.target for pair in pairs], **_RIGHT_PADDED)
        labels = batch["labels"].clone()
    else:
        full = [_full_text(processor, pair.prompt, pair.target) for pair in pairs]
        batch = process(processor, full, images, **_RIGHT_PADDED)
        prompt_batch = process(processor, prompts, images, **_RIGHT_PADDED)
        labels = batch["input_ids"].clone()
        for row in range(len(pairs)):
            prompt_ids = prompt_batch["input_ids"][row][prompt_batch["attention_mask"][row] == 1].tolist()
            labels[row, : _common_prefix(prompt_ids, batch["input_ids"][row].tolist())] = IGNORE_INDEX
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
