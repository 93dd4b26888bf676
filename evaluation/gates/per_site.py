"""What the gates that judge each site's own adapter share: the median site, and when there is none to judge by."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from evaluation.gates.registry import GateSettings, RoundEvidence, outcome

MIN_SITES = 3  # fewer: no median site that a stray can stand out from, and no telling which of a pair is worse


def gaps_from_median(values: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Per site: the mean over items of its value minus the items' median over sites, and that mean's SE."""
    counts = {len(own) for own in values.values()}
    if len(counts) != 1 or counts.pop() < 2:
        raise ValueError(f"the sites' adapters scored {sorted({len(own) for own in values.values()})} items")
    median = [statistics.median(column) for column in zip(*values.values())]
    gaps = {site: [mine - middle for mine, middle in zip(own, median)] for site, own in values.items()}
    return {site: (statistics.fmean(own), statistics.stdev(own) / len(own) ** 0.5) for site, own in gaps.items()}


def unjudged(settings: GateSettings, evidence: RoundEvidence, scored: Mapping[str, object]) -> dict | None:
    """The outcome when the sites cannot be judged against each other this round; None when they can."""
    if evidence.server_round == 0:
        return outcome(settings, True, {"scored": 0})  # the starting model holds no site's update
    unscored = len(set(evidence.sites) - set(scored))
    if unscored:
        return outcome(settings, False, {"scored": len(scored)}, f"cannot judge: {unscored} site(s) unscored")
    if len(scored) < MIN_SITES:
        return outcome(settings, True, {"scored": len(scored), "judged": False})
    return None
