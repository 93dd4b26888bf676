"""The contributions gate: each site's own adapter (the global plus its update alone) answers the first server-eval
questions, and a site whose answers fall clearly below the round's median site is a stray.

An update that teaches wrong answers (swapped labels, unsafe wording in place of answers) can point the same way
as honest ones and be no larger, so the updates gate passes it, and in an average of several sites its harm is
under the utility gate's noise margin. Alone, it shows: once the global answers well, the site's own adapter
loses the answer's margin over the other choices on many questions. Early on, when the global knows nothing, it
does not: an adapter trained from scratch on swapped labels looks like one trained on right ones.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from pydantic import Field

from evaluation.gates.noise import z_score
from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate
from evaluation.items import ItemResults

MIN_SITES = 3  # fewer: no median site that a stray can fall below, and no telling which of a pair is worse


class ContributionsGateSettings(GateSettings):
    """`[gates.contributions]`: how many questions each site's adapter answers, and how far below the median."""

    questions: int = Field(96, ge=8)  # the first server-eval questions each site's adapter answers (open: no margin)
    max_shortfall: float = Field(0.2, gt=0.0)  # mean answer margin (nats) a site may lose against the median site
    confidence: float = Field(0.99, ge=0.5, lt=1.0)  # one-sided: a stray only if clearly over max_shortfall


def _shared_margins(site_items: Mapping[str, ItemResults]) -> dict[str, list[float]]:
    """Per site, its margins on the questions every site's adapter has a margin for (the same questions)."""
    counts = {len(items.margins) for items in site_items.values()}
    if len(counts) != 1:
        raise ValueError(f"the sites' adapters answered different numbers of questions: {sorted(counts)}")
    rows = zip(*(items.margins for items in site_items.values()))
    shared = [row for row in rows if all(margin is not None for margin in row)]
    return {site: [float(row[index]) for row in shared] for index, site in enumerate(site_items)}


def shortfall_figures(site_items: Mapping[str, ItemResults]) -> dict[str, dict[str, float]]:
    """Per site: its mean margin, and its shortfall against the per-question median of all sites (with its SE)."""
    margins = _shared_margins(site_items)
    questions = len(next(iter(margins.values())))
    if questions < 2:
        raise ValueError(f"{questions} question(s) with choices that every site's adapter answered")
    median = [statistics.median(column) for column in zip(*margins.values())]
    figures = {}
    for site, own in margins.items():
        gaps = [middle - mine for middle, mine in zip(median, own)]
        figures[site] = {
            "margin": statistics.fmean(own),
            "shortfall": statistics.fmean(gaps),
            "standard_error": statistics.stdev(gaps) / questions**0.5,
        }
    return figures


@register_gate("contributions", ContributionsGateSettings)
def contributions_gate(settings: ContributionsGateSettings) -> Gate:
    """Rejects a candidate holding a site whose own adapter answers clearly worse than the round's median site."""
    z = z_score(settings.confidence)

    def judge(evidence: RoundEvidence) -> dict:
        if evidence.server_round == 0:
            return outcome(settings, True, {"scored": 0})  # the starting model holds no site's update
        site_items = evidence.site_items or {}
        unscored = len(set(evidence.sites) - set(site_items))
        if unscored:
            return outcome(settings, False, {"scored": len(site_items)}, f"cannot judge: {unscored} site(s) unscored")
        if len(site_items) < MIN_SITES:
            return outcome(settings, True, {"scored": len(site_items), "judged": False})
        per_site = shortfall_figures(site_items)
        strays = {
            site: f"margin {figures['shortfall']:.2f} under the median site"
            for site, figures in per_site.items()
            if figures["shortfall"] - z * figures["standard_error"] > settings.max_shortfall
        }
        figures = {
            "scored": len(per_site),
            "judged": True,
            "sites": per_site,
            "max_shortfall": max(f["shortfall"] for f in per_site.values()),
            "strays": sorted(strays),
        }
        return outcome(settings, not strays, figures, "; ".join(f"{site}: {why}" for site, why in strays.items()))

    return judge
