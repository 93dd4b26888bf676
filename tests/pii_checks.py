"""Helpers for tests that prove no injected PII value gets past the filter."""

from __future__ import annotations

import json
import re
from pathlib import Path

from simulations.synth import INJECTED_PII


def injected(*sites: Path) -> list[str]:
    """The PII values the generator put into these sites' raw data."""
    return sorted({value for site in sites for value in json.loads((site / INJECTED_PII).read_text(encoding="utf-8"))})


def leaked(values: list[str], text: str) -> list[str]:
    """Values whose text survives in text: values with letters case-insensitively, identifiers also by their
    digits alone (any separators between them, but not inside a longer number such as a float's decimals)."""
    found = []
    for value in values:
        digits = re.sub(r"\D", "", value)
        spread = r"(?<!\d)" + r"[\s\-./()]*".join(digits) + r"(?!\d)"
        has_letters = any(character.isalpha() for character in value)
        if (has_letters and value.lower() in text.lower()) or (len(digits) >= 5 and re.search(spread, text)):
            found.append(value)
    return found


def run_outputs(run_dir: Path) -> str:
    """Everything a run wrote outside its raw synthetic data, as text (binary files read as latin-1)."""
    files = [path for path in run_dir.rglob("*") if path.is_file() and "data" not in path.relative_to(run_dir).parts]
    return "\n".join(path.read_bytes().decode("latin-1") for path in files)
