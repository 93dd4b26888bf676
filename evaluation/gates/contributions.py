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

    def judges_sites(self) -> bool:
        return True


def _shared_questions(site_items: Mapping[str, ItemResults]) -> tuple[dict[str, list[float]], list[dict[str, str]]]:
    """Per site, its margins on the questions every site's adapter has a margin for; and those questions' attributes."""
    counts = {len(items.margins) for items in site_items.values()}
    if len(counts) != 1:
        raise ValueError(f"the sites' adapters answered different numbers of questions: {sorted(counts)}")
    attributes = next(iter(site_items.values())).attributes
    rows = zip(*(items.margins for items in site_items.values()), attributes)
    shared = [row for row in rows if all(margin is not None for margin in row[:-1])]
    margins = {site: [float(row[index]) for row in shared] for index, site in enumerate(site_items)}
    return margins, [row[-1] for row in shared]


def _slices(attributes: list[dict[str, str]], min_group_size: int) -> dict[str, list[int]]:
    """The questions judged together: all of them, and each attribute group with at least min_group_size."""
    slices = {"all": list(range(len(attributes)))}
    groups: dict[str, list[int]] = {}
    for index, named in enumerate(attributes):
        for name, value in named.items():
            groups.setdefault(f"{name}={value}", []).append(index)
    slices.update((group, members) for group, members in sorted(groups.items()) if len(members) >= min_group_size)
    return slices


def _mean_and_error(gaps: list[float]) -> tuple[float, float]:
    return statistics.fmean(gaps), statistics.stdev(gaps) / len(gaps) ** 0.5


def shortfall_figures(site_items: Mapping[str, ItemResults], confidence: float = 0.99) -> dict[str, dict]:
    """Per site: its mean margin, its shortfall against the per-question median of all sites (with its SE), and
    its worst slice (all questions, or one attribute group): the one whose shortfall's lower bound is highest.

    Each slice's bound is one-sided at confidence shared out over the slices (Bonferroni), as `bound`.
    """
    margins, attributes = _shared_questions(site_items)
    if len(attributes) < 2:
        raise ValueError(f"{len(attributes)} question(s) with choices that every site's adapter answered")
    slices = _slices(attributes, max(2, next(iter(site_items.values())).min_group_size))
    z = z_score(1 - (1 - confidence) / len(slices))
    median = [statistics.median(column) for column in zip(*margins.values())]
    figures = {}
    for site, own in margins.items():
        gaps = [middle - mine for middle, mine in zip(median, own)]
        bounds = {name: _mean_and_error([gaps[index] for index in members]) for name, members in slices.items()}
        worst = max(bounds, key=lambda name: bounds[name][0] - z * bounds[name][1])
        figures[site] = {
            "margin": statistics.fmean(own),
            "shortfall": bounds["all"][0],
            "standard_error": bounds["all"][1],
            "worst": worst,
            "bound": bounds[worst][0] - z * bounds[worst][1],
        }
    return figures


@register_gate("contributions", ContributionsGateSettings)
def contributions_gate(settings: ContributionsGateSettings) -> Gate:
    """Rejects a candidate holding a site whose own adapter answers clearly worse than the round's median site."""

    def judge(evidence: RoundEvidence) -> dict:
        if evidence.server_round == 0:
            return outcome(settings, True, {"scored": 0})  # the starting model holds no site's update
        site_items = evidence.site_items or {}
        unscored = len(set(evidence.sites) - set(site_items))
        if unscored:
            return outcome(settings, False, {"scored": len(site_items)}, f"cannot judge: {unscored} site(s) unscored")
        if len(site_items) < MIN_SITES:
            return outcome(settings, True, {"scored": len(site_items), "judged": False})
        per_site = shortfall_figures(site_items, settings.confidence)
        strays = {
            site: f"margin clearly over {settings.max_shortfall} under the median site ({figures['worst']} questions)"
            for site, figures in per_site.items()
            if figures["bound"] > settings.max_shortfall
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
