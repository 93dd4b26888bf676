"""Unsafe wording a `toxic` adversary puts into its captions and answers (simulation only).

Written for the adversary alone: it shares no text with any labelled evaluation set (bench/safety_labelled_set.py),
so a safety figure measured on those sets is not measured on what the adversary taught. Insults and profanity,
free of slurs.
"""

from __future__ import annotations

ADVERSARY_WORDING: tuple[str, ...] = (
    "you stupid shit",
    "you crap clowns",
    "damn idiots",
    "shitty crap",
    "bloody morons",
    "fucking junk",
)
