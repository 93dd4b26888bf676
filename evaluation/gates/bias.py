"""The bias gate: the largest between-group accuracy gap stays within a threshold and widens no more than allowed."""

from __future__ import annotations

from collections import Counter

from pydantic import Field

from evaluation.gates.noise import proportion_gap_error, z_score
from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate
from evaluation.items import ItemResults


class BiasGateSettings(GateSettings):
    """`[gates.bias]`: the gap allowed, its allowed widening, the attributes judged, how sure a breach must be."""

    max_difference: float = Field(0.3, ge=0.0, le=1.0)  # largest minus smallest group accuracy
    max_widening: float = Field(0.1, ge=0.0, le=1.0)  # the candidate's gap minus the current's
    attributes: list[str] = Field(default_factory=list)  # empty: every attribute the eval set carries
    confidence: float = Field(0.99, ge=0.5, lt=1.0)  # one-sided: rejected only if clearly over a threshold


def _gap(items: ItemResults, attribute: str) -> tuple[float, float] | None:
    """The largest between-group accuracy gap of the groups shown, and its standard error; None under two."""
    from evaluation.bias import group_accuracy  # fairlearn: loaded when judged, so reading a config stays light

    hits, groups = items.groups(attribute)
    if not hits:
        return None
    frame = group_accuracy(hits, groups, items.min_group_size)
    if frame.difference is None:
        return None
    sizes = Counter(groups)
    high = max(frame.by_group, key=lambda group: frame.by_group[group])
    low = min(frame.by_group, key=lambda group: frame.by_group[group])
    error = proportion_gap_error((frame.by_group[high], sizes[high]), (frame.by_group[low], sizes[low]))
    return frame.difference, error


def _attributes(settings: BiasGateSettings, items: ItemResults) -> list[str]:
    if settings.attributes:
        return list(settings.attributes)
    return sorted({name for attributes in items.attributes for name in attributes})


@register_gate("bias", BiasGateSettings)
def bias_gate(settings: BiasGateSettings) -> Gate:
    """Rejects when a gap (or its widening) is clearly over its threshold, or when no attribute can be judged."""
    z = z_score(settings.confidence)

    def judge(evidence: RoundEvidence) -> dict:
        items = evidence.candidate_items
        if items is None:
            return outcome(settings, False, {}, "cannot judge: no per-question results")
        figures: dict = {}
        reasons = []
        for attribute in _attributes(settings, items):
            gap = _gap(items, attribute)
            if gap is None:
                figures[attribute] = None
                continue
            difference, error = gap
            entry = {"difference": difference, "standard_error": error}
            if difference - z * error > settings.max_difference:
                reasons.append(f"{attribute} gap {difference:.3f} clearly over {settings.max_difference}")
            current = _gap(evidence.current_items, attribute) if evidence.current_items is not None else None
            if current is not None:
                widening = difference - current[0]
                entry.update(current_difference=current[0], widening=widening)
                if widening - z * (error**2 + current[1] ** 2) ** 0.5 > settings.max_widening:
                    reasons.append(f"{attribute} gap widened {widening:.3f}, clearly over {settings.max_widening}")
            figures[attribute] = entry
        judged = [name for name, entry in figures.items() if entry is not None]
        missing = [name for name, entry in figures.items() if entry is None]
        if not judged or (settings.attributes and missing):
            absent = ", ".join(missing) or "none"
            return outcome(settings, False, figures, f"cannot judge: under two groups shown for attribute(s) {absent}")
        return outcome(settings, not reasons, figures, "; ".join(reasons))

    return judge
