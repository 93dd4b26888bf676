"""Unicode normalization before analysis: NFKC, no invisible characters, ASCII digits."""

from __future__ import annotations

import unicodedata

# Format characters (zero-width space/joiners, soft hyphen, bidi marks, BOM) hide identifiers from patterns.
_INVISIBLE = {"Cf"}
_SPACES = {"Zs", "Zl", "Zp"}


def normalize_text(text: str) -> str:
    """NFKC, drop format characters, map every decimal digit to ASCII and every space to ' '."""
    characters = []
    for character in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(character)
        if category in _INVISIBLE:
            continue
        if category == "Nd":
            characters.append(str(unicodedata.digit(character)))
        elif category in _SPACES and character != "\n":
            characters.append(" ")
        else:
            characters.append(character)
    return "".join(characters)
