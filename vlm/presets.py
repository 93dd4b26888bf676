"""Presets of the project's own tiny LLaVA-architecture VLM (sizes and pre-training recipe)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

RECIPE_VERSION = 3  # bump when the pre-training code changes what a preset builds

# The words of the built-in scenarios (simulations/scenarios.py) and of their PII after filtering (cue words
# and privacy.pii's placeholders): the tiny model's tokenizer learns each as a whole word. A change here changes the
# preset's fingerprint; tests/test_base_model.py checks the scenarios use no word missing from it.
DEMO_VOCABULARY: tuple[str, ...] = (
    "Dr.",
    "Hi,",
    "I'm",
    "MRN",
    "a",
    "are",
    "arrived",
    "at",
    "blue",
    "born",
    "box",
    "by",
    "call",
    "card",
    "clear",
    "colour",
    "condition",
    "customer",
    "damaged",
    "email",
    "findings",
    "for",
    "good",
    "green",
    "in",
    "is",
    "lamp",
    "large",
    "left",
    "lesion",
    "lives",
    "loyalty",
    "lung",
    "lungs",
    "medium",
    "mug",
    "no",
    "of",
    "on",
    "order",
    "patient",
    "product",
    "purple",
    "red",
    "referred",
    "right",
    "seen",
    "ship",
    "side",
    "size",
    "small",
    "tel",
    "the",
    "there",
    "to",
    "what",
    "which",
    "white",
    "yellow",
    "yes",
    "<ACCOUNT_NUMBER>",
    "<ADDRESS>",
    "<AGE_OVER_89>",
    "<CREDIT_CARD>",
    "<CUSTOMER_ID>",
    "<DATE>",
    "<DEVICE_ID>",
    "<EMAIL_ADDRESS>",
    "<HEALTH_PLAN_ID>",
    "<IBAN_CODE>",
    "<ID_NUMBER>",
    "<IP_ADDRESS>",
    "<LICENSE_OR_CERTIFICATE>",
    "<LOCATION>",
    "<MAC_ADDRESS>",
    "<MEDICAL_LICENSE>",
    "<MEDICAL_RECORD_NUMBER>",
    "<ORDER_NUMBER>",
    "<PERSON>",
    "<PHONE_NUMBER>",
    "<POSTAL_CODE>",
    "<UK_NHS>",
    "<URL>",
    "<US_ITIN>",
    "<US_SSN>",
    "<VEHICLE_ID>",
)


@dataclass(frozen=True)
class TinyPreset:
    """Sizes of a tiny LLaVA (CLIP vision tower + Llama language model) and its pre-training budget."""

    name: str
    image_size: int = 32
    patch_size: int = 8
    vision_hidden: int = 64
    vision_layers: int = 2
    text_hidden: int = 128
    text_layers: int = 2
    heads: int = 4
    vocab_size: int = 1024
    max_positions: int = 128
    pretrain_steps: int = 1800
    pretrain_batch: int = 32
    pretrain_lr: float = 6e-4
    seed: int = 0
    vocabulary: tuple[str, ...] = DEMO_VOCABULARY

    def fingerprint(self) -> str:
        """Hash of everything that determines the built weights (cache key).

        Pre-training runs on one torch thread, so the thread count changes nothing; the instruction set torch's
        CPU kernels dispatch to (AVX2, AVX512, ...) still changes the last bits, and so is part of the key.
        """
        import tokenizers
        import torch
        import transformers

        versions = {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        payload = {**dataclasses.asdict(self), "recipe": RECIPE_VERSION, **versions}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


PRESETS: dict[str, TinyPreset] = {
    "tiny": TinyPreset(name="tiny"),
    "tiny-test": TinyPreset(
        name="tiny-test", vision_hidden=32, text_hidden=64, pretrain_steps=80, pretrain_batch=16, pretrain_lr=2e-3
    ),
}


def get_preset(name: str) -> TinyPreset:
    """The preset called name, or a ValueError listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
