"""Caption token-F1 against one or more references, with SQuAD's answer normalization."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalized_tokens(text: str) -> list[str]:
    """Lowercase, punctuation and articles removed, split on whitespace (SQuAD v1.1 evaluation)."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (tokens counted with multiplicity); 1 when both are empty."""
    predicted, expected = normalized_tokens(prediction), normalized_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def caption_f1(prediction: str, references: Sequence[str]) -> float:
    """The best token-F1 over the references."""
    if not references:
        raise ValueError("a caption needs at least one reference")
    return max(token_f1(prediction, reference) for reference in references)


def mean_caption_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean over captions of their best token-F1 (0 when there is none)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    scores = [caption_f1(p, r) for p, r in zip(predictions, references)]
    return sum(scores) / len(scores) if scores else 0.0
