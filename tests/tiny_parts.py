"""What the tiny test checkpoints share: sizes, a locally trained byte-level BPE tokenizer, a tiny Llama."""

from __future__ import annotations

import itertools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, PreTrainedTokenizerFast

SEED = 0
IMAGE_SIZE = 32
PATCH_SIZE = 8
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
HIDDEN = 32
IMAGE_TOKEN = "<image>"
LLAMA_SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}

_COLOURS = ("red", "green", "blue", "yellow", "black", "white", "orange", "purple")
_NOUNS = ("cat", "dog", "bird", "car", "house", "tree", "boat", "ball")


def _corpus() -> list[str]:
    """Return a few hundred words of deterministic English to train the BPE on."""
    sentences = [f"the {colour} {noun} is on the left." for colour, noun in itertools.product(_COLOURS, _NOUNS)]
    sentences += [
        f"question: what colour is the {noun}? answer: {colour}" for colour, noun in zip(_COLOURS, _NOUNS, strict=True)
    ]
    sentences += ["describe this image.", "there are two small dogs and one large cat in the picture."]
    return sentences


def build_tokenizer(special: dict[str, str], extra_special: tuple[str, ...], add_bos: bool) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE and wrap it as a fast tokenizer with the given special tokens.

    `special` maps tokenizer attribute names (bos_token, image_token, ...) to token strings;
    `extra_special` are further special tokens that need no attribute.
    """
    all_special = list(dict.fromkeys([*special.values(), *extra_special]))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=all_special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        extra_special_tokens=list(extra_special),
        add_bos_token=add_bos,
        **special,
    )


def llama_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """Tiny Llama text backbone sized to the tokenizer."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
