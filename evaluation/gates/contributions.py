"""The contributions gate: each site's own adapter (the global plus its update alone) answers the first server-eval
questions, and a site whose answers fall clearly below the round's median site is a stray.

An update that teaches wrong answers (swapped labels, unsafe wording in place of answers) can point the same way
as honest ones and be no larger, so the updates gate passes it, and in an average of several sites its harm is
under the utility gate's noise margin. Alone, it shows: once the global answers well, the site's own adapter
loses the answer's margin over the other choices on many questions. Early on, when the global knows little, every
site's margin is small and so is a swapped-label site's shortfall: a fixed number of nats is loose then and tight
later, so the shortfall is also held to a share of the median site's mean margin while that is positive. Wording
appended to every answer leaves the margin alone (each choice pays for it) but not the likelihood of the answer
followed by the end of the text, the second score judged. Answers wrong for one group only (a bias) lose margin on
that group's questions and show over the whole set only in proportion, so the margin is also judged per group. A
group's questions are other questions about other images, so that comparison is noisy; the same question with its
descriptor swapped ("a 71-year-old woman" <-> "... man") is not: a site taught to answer by the descriptor moves its
margins under the swap (up or down, question by question) clearly further than the median site, whose own data's
skews move them less; the size of that move is the third score judged (with `swaps`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from pydantic import Field, field_validator

from evaluation.gates.noise import z_score
from evaluation.gates.per_site import gaps_from_median, unjudged
from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate
from evaluation.items import ItemResults

SCORES = ("margin", "likelihood")  # the answer's margin over the other choices; log p(answer, then the text's end)


class ContributionsGateSettings(GateSettings):
    """`[gates.contributions]`: how many questions each site's adapter answers, and how far below the median."""

    questions: int = Field(240, ge=8)  # the first server-eval questions each site's adapter answers (open: left out)
    max_shortfall: float = Field(0.15, gt=0.0)  # mean answer margin (nats) a site may lose against the median site
    max_shortfall_share: float = Field(0.4, gt=0.0)  # and at most this share of the median site's mean margin
    max_likelihood_shortfall: float = Field(1.0, gt=0.0)  # and mean log p(answer, then its end)
    groups: bool = True  # also judge the margin on each attribute group's questions alone: harm to one group
    swaps: dict[str, str] = Field(default_factory=dict)  # descriptor -> counterpart, swapped both ways: also judge
    # how far each question's margin moves when they are swapped (empty: not judged)
    max_counterfactual_excess: float = Field(0.3, gt=0.0)  # mean |margin shift| (nats) over the median site's
    confidence: float = Field(0.99, ge=0.5, lt=1.0)  # one-sided, for the whole, the groups and the swap each

    def judges_sites(self) -> bool:
        return True

    @field_validator("swaps")
    @classmethod
    def _distinct_descriptors(cls, swaps: dict[str, str]) -> dict[str, str]:
        words = [word.strip().casefold() for pair in swaps.items() for word in pair]
        if not all(words):
            raise ValueError("a descriptor or counterpart is empty")
        if len(set(words)) < len(words):
            raise ValueError("a descriptor appears twice (swapped both ways, each may be named once)")
        return swaps


def _shared_questions(site_items: Mapping[str, ItemResults]) -> list[int]:
    """The questions every site's adapter has a margin for (the same questions: their counts must agree)."""
    counts = {len(items.margins) for items in site_items.values()}
    if len(counts) != 1:
        raise ValueError(f"the sites' adapters answered different numbers of questions: {sorted(counts)}")
    return [index for index in range(counts.pop()) if all(i.margins[index] is not None for i in site_items.values())]


def _scores(site_items: Mapping[str, ItemResults], questions: list[int], score: str) -> dict[str, list[float]]:
    """Per site, its values of one score (margin, likelihood) on the questions given."""
    return {site: [getattr(items, f"{score}s")[i] for i in questions] for site, items in site_items.items()}


def shortfall_figures(site_items: Mapping[str, ItemResults]) -> dict[str, dict[str, float]]:
    """Per site: its mean margin, and per score (margin, likelihood) its mean shortfall against the per-question
    median of all sites, with its standard error."""
    questions = _shared_questions(site_items)
    margins = _scores(site_items, questions, "margin")
    figures = {site: {"margin": statistics.fmean(own)} for site, own in margins.items()}
    for score in SCORES:
        for site, (gap, error) in gaps_from_median(_scores(site_items, questions, score)).items():
            figures[site].update({f"{score}_shortfall": -gap, f"{score}_standard_error": error})
    return figures


def attribute_groups(site_items: Mapping[str, ItemResults]) -> dict[str, list[int]]:
    """The shared questions of each attribute group ('sex=F'), for the groups shown (at least min_group_size)."""
    any_items = next(iter(site_items.values()))
    groups: dict[str, list[int]] = {}
    for index in _shared_questions(site_items):
        for name, value in any_items.attributes[index].items():
            groups.setdefault(f"{name}={value}", []).append(index)
    smallest = max(2, any_items.min_group_size)
    return {group: questions for group, questions in sorted(groups.items()) if len(questions) >= smallest}


def group_shortfall_figures(site_items: Mapping[str, ItemResults]) -> dict[str, dict]:
    """Per attribute group: the median site's mean margin on its questions, and per site its margin shortfall
    against the per-question median there, with its standard error."""
    figures = {}
    for group, questions in attribute_groups(site_items).items():
        margins = _scores(site_items, questions, "margin")
        median = statistics.fmean(statistics.median(column) for column in zip(*margins.values()))
        sites = {
            site: {"margin_shortfall": -gap, "margin_standard_error": error}
            for site, (gap, error) in gaps_from_median(margins).items()
        }
        figures[group] = {"median_margin": median, "sites": sites}
    return figures


def counterfactual_figures(site_items: Mapping[str, ItemResults]) -> tuple[int, dict[str, dict[str, float]]]:
    """The questions every site answered both as asked and with its descriptors swapped, and per site its mean
    margin shift |as asked − swapped| there and that shift's excess over the per-question median site, with its SE."""
    questions = [
        index
        for index in _shared_questions(site_items)
        if all(items.counterfactual_margins[index] is not None for items in site_items.values())
    ]
    if len(questions) < 2:
        return len(questions), {}
    shifts = {
        site: [abs(items.margins[i] - items.counterfactual_margins[i]) for i in questions]
        for site, items in site_items.items()
    }
    return len(questions), {
        site: {
            "counterfactual_shift": statistics.fmean(shifts[site]),
            "counterfactual_excess": excess,
            "counterfactual_standard_error": error,
        }
        for site, (excess, error) in gaps_from_median(shifts).items()
    }


def margin_limit(settings: ContributionsGateSettings, median_margin: float) -> float:
    """The margin shortfall allowed: max_shortfall nats, or max_shortfall_share of a positive median margin if less."""
    if median_margin <= 0:
        return settings.max_shortfall
    return min(settings.max_shortfall, settings.max_shortfall_share * median_margin)


def judge_groups(
    settings: ContributionsGateSettings, site_items: Mapping[str, ItemResults], strays: dict[str, list[str]]
) -> dict[str, dict]:
    """Each group's figures with each site's bound and the group's limit; a site clearly over one joins strays.

    The groups are one family of tests, at `confidence` together (Bonferroni over them); the whole set's two
    scores are the other family.
    """
    by_group = group_shortfall_figures(site_items)
    z = z_score(1 - (1 - settings.confidence) / max(1, len(by_group)))
    for group, group_figures in by_group.items():
        allowed = group_figures["margin_limit"] = margin_limit(settings, group_figures["median_margin"])
        for site, site_figures in group_figures["sites"].items():
            bound = site_figures["margin_bound"] = (
                site_figures["margin_shortfall"] - z * site_figures["margin_standard_error"]
            )
            if bound > allowed:
                strays.setdefault(site, []).append(
                    f"margin on {group} clearly over {round(allowed, 3)} under the median site"
                )
    return by_group


@register_gate("contributions", ContributionsGateSettings)
def contributions_gate(settings: ContributionsGateSettings) -> Gate:
    """Rejects a candidate holding a site whose own adapter answers clearly worse than the round's median site."""
    z = z_score(1 - (1 - settings.confidence) / len(SCORES))  # either score may convict: Bonferroni over both
    z_swap = z_score(settings.confidence)  # the move under the swap: a test of its own, as the groups are a family

    def judge(evidence: RoundEvidence) -> dict:
        site_items = evidence.site_items or {}
        if (undecided := unjudged(settings, evidence, site_items)) is not None:
            return undecided
        per_site = shortfall_figures(site_items)
        swapped = 0
        if settings.swaps:
            swapped, shifts = counterfactual_figures(site_items)
            if not shifts:
                return outcome(settings, False, {"scored": len(per_site)}, "cannot judge: no question holds a swap")
            for site, shift in shifts.items():
                per_site[site].update(shift)
        any_site = next(iter(per_site.values()))
        median_margin = any_site["margin"] + any_site["margin_shortfall"]  # the per-question median's mean
        limits = {"margin": margin_limit(settings, median_margin), "likelihood": settings.max_likelihood_shortfall}
        strays: dict[str, list[str]] = {}
        for site, site_figures in per_site.items():
            for score, allowed in limits.items():
                bound = site_figures[f"{score}_shortfall"] - z * site_figures[f"{score}_standard_error"]
                site_figures[f"{score}_bound"] = bound
                if bound > allowed:
                    why = f"{score} clearly over {round(allowed, 3)} under the median site"
                    strays.setdefault(site, []).append(why)
            if swapped:
                bound = site_figures["counterfactual_excess"] - z_swap * site_figures["counterfactual_standard_error"]
                site_figures["counterfactual_bound"] = bound
                if bound > settings.max_counterfactual_excess:
                    limit = settings.max_counterfactual_excess
                    why = f"margin shift under the swap clearly over {limit} above the median site"
                    strays.setdefault(site, []).append(why)
        figures = {
            "scored": len(per_site),
            "judged": True,
            "median_margin": median_margin,
            "margin_limit": limits["margin"],
            "swapped": swapped,
            "sites": per_site,
        }
        if settings.groups:
            figures["groups"] = judge_groups(settings, site_items, strays)
        figures["strays"] = sorted(strays)
        reason = "; ".join(f"{site}: {', '.join(why)}" for site, why in strays.items())
        return outcome(settings, not strays, figures, reason)

    return judge
