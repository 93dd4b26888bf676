"""Leakage of identities into an adapter: how much more likely it finds made-up identities than the placeholders the
PII filter leaves in their place, each text scored alone as an image's caption (log-likelihoods, never texts, leave
memory).

Alone, not opening a real caption: the caption's own likelihood after either text differs from site to site with how
its adapter fits captions. Measured on the hospital demo (rounds 1-3, data seeds 0-2, a site with its filter off from
round 1), texts opening captions put honest sites up to 17.9 nats over the median site against 26.8-35.9 for that
site in round 1; these sixteen texts alone put honest sites at most 2.9 over and that site 10.8-13.0.
"""

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
    """Per pair, as the caption of record i mod len(records)'s image: log p(identity text) − log p(filtered text)."""
    images = [record.load_image() for record in records]
    targets = []
    for index, (identity, filtered) in enumerate(pairs):
        image = images[index % len(images)]
        targets += [TextPair(image, CAPTION_PROMPT, identity), TextPair(image, CAPTION_PROMPT, filtered)]
    model.eval()
    scores = log_likelihoods(model, processor, targets, batch_size)
    return [with_identity - filtered for with_identity, filtered in zip(scores[::2], scores[1::2])]
