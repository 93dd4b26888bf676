"""Greedy, batched text generation from (image, prompt) inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from vlm.collate import process, prompt_text, to_model


@torch.no_grad()
def generate_texts(
    model,
    processor,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 16,
    answer_starts: Sequence[str] | None = None,
) -> list[str]:
    """One greedy continuation per (image, prompt), prompts formatted as in training, special tokens dropped; with
    answer_starts, each continues its answer from those words (a canary's prefix)."""
    starts = list(answer_starts) if answer_starts is not None else [""] * len(prompts)
    if not len(images) == len(prompts) == len(starts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts and {len(starts)} answer starts")
    model.eval()
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = zip(prompts[start : start + batch_size], starts[start : start + batch_size])
        batch = process(
            processor,
            [prompt_text(processor, prompt, answer_start) for prompt, answer_start in chunk],
            list(images[start : start + batch_size]),
            return_tensors="pt",
            padding=True,
            padding_side="left",  # generation continues every row from its last real token
        )
        output = model.generate(
            **to_model(dict(batch), model),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts.extend(text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True))
    return texts
