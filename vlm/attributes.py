"""Record attributes (used only for per-group counts): declared names and values, and small-cell suppression."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The demo's synthetic attributes (simulations/scenarios.py); a deployment declares its own.
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "age_band": ("18-39", "40-59", "60-79", "80+"),
}
DEFAULT_MIN_GROUP_SIZE = 5
_BAND = re.compile(r"^(\d{1,3})(?:-(\d{1,3})|\+)$")


def _band_of(value: object, bands: tuple[str, ...]) -> str | None:
    """The band ('40-59', '80+') holding a whole number (an int, or a string of at most 3 digits), if any."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 3):
            return None
        value = int(value)
    for band in bands:
        match = _BAND.match(band)
        if match and int(match[1]) <= value and (match[2] is None or value <= int(match[2])):
            return band
    return None


@dataclass(frozen=True)
class AttributeSchema:
    """Declared attribute names, each with its allowed values; numbers are mapped into declared bands."""

    allowed: tuple[tuple[str, tuple[str, ...]], ...] = tuple(DEFAULT_ATTRIBUTES.items())

    @classmethod
    def from_mapping(cls, allowed: Mapping[str, list[str] | tuple[str, ...]]) -> AttributeSchema:
        """From {name: [values]} (config)."""
        return cls(tuple((name, tuple(values)) for name, values in sorted(allowed.items())))

    def screen(self, raw: Mapping[object, object]) -> tuple[dict[str, str], int, int]:
        """The declared attributes with allowed values; counts of undeclared names and of disallowed values."""
        declared = dict(self.allowed)
        kept: dict[str, str] = {}
        undeclared = not_allowed = 0
        for name, value in raw.items():
            if name not in declared:
                undeclared += 1
            elif isinstance(value, str) and value in declared[name]:
                kept[name] = value
            elif (band := _band_of(value, declared[name])) is not None:
                kept[name] = band
            else:
                not_allowed += 1
        return kept, undeclared, not_allowed


def suppress_small_cells(
    groups: Mapping[str, Mapping[str, Mapping[str, int]]], min_size: int
) -> dict[str, dict[str, dict[str, int]]]:
    """Drop group cells whose total is below min_size, and the next smallest until the dropped ones add up to it.

    The second step (complementary suppression) keeps a dropped cell from being recovered as the overall total
    minus the cells shown. An attribute left without any cell is dropped.
    """
    kept: dict[str, dict[str, dict[str, int]]] = {}
    for name, cells in groups.items():
        ordered = sorted(cells.items(), key=lambda item: (item[1]["total"], item[0]))
        hidden = [value for value, counts in ordered if counts["total"] < min_size]
        hidden_total = sum(cells[value]["total"] for value in hidden)
        for value, counts in ordered[len(hidden) :]:
            if not hidden or hidden_total >= min_size:
                break
            hidden.append(value)
            hidden_total += counts["total"]
        shown = {value: dict(counts) for value, counts in cells.items() if value not in hidden}
        if shown:
            kept[name] = shown
    return kept
