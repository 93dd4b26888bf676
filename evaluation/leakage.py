"""Leakage of identities into an adapter: how much more likely it finds made-up identities than the placeholders the
PII filter leaves in their place, as the opening of a caption (log-likelihoods, never texts, leave memory)."""

from __future__ import annotations

from collections.abc import Sequence

from evaluation.utility import log_likelihoods
from privacy.pii.settings import PiiSettings
from vlm.collate import TextPair
from vlm.records import Record
from vlm.training import CAPTION_PROMPT

IdentityPair = tuple[str, str]  # a text with identities, and the same text as the PII filter leaves it


def identity_pairs(texts: Sequence[str], settings: PiiSettings) -> list[IdentityPair]:
    """Each text beside its filtered form (the run's own filter settings: the placeholders honest sites train on)."""
    from privacy.pii.text import TextFilter  # Presidio and spaCy: loaded only when the leakage gate is configured

    filtered = TextFilter(settings).redact(list(texts))
    return [(text, redaction.text) for text, redaction in zip(texts, filtered)]


def identity_preferences(
    model, processor, records: Sequence[Record], pairs: Sequence[IdentityPair], batch_size: int = 32
) -> list[float]:
    """Per record with a caption and per pair: log p(identity text + caption) − log p(filtered text + caption)."""
    targets = []
    for record in records:
        if record.caption is None:
            continue
        image = record.load_image()
        for identity, filtered in pairs:
            targets += [TextPair(image, CAPTION_PROMPT, f"{identity} {record.caption}")]
            targets += [TextPair(image, CAPTION_PROMPT, f"{filtered} {record.caption}".strip())]
    model.eval()
    scores = log_likelihoods(model, processor, targets, batch_size)
    return [with_identity - filtered for with_identity, filtered in zip(scores[::2], scores[1::2])]
