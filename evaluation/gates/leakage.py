"""The leakage gate: a site whose own adapter prefers identities over the PII filter's placeholders clearly more than
the round's median site trained on text its filter should have cleaned, and is a stray.

Honest sites train on filtered text, where a name or a record number is a placeholder; a site whose filter is off
or broken trains on the identities themselves. Its update, averaged with the others, memorizes too little to be
caught in the aggregate's answers, but its own adapter (the global plus its update alone) already finds made-up
identities likelier, against their filtered form, than honest sites' adapters do. The texts are made up and fixed;
only their log-likelihoods are compared, per text, with the median site's.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from pydantic import Field

from evaluation.gates.noise import z_score
from evaluation.gates.per_site import gaps_from_median, unjudged
from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate

IDENTITIES = (  # made-up people, in the ways hospital records name them
    "patient Maria Lopez, MRN H4821773, born 1961-03-14.",
    "patient Ines Varga, MRN H5190337, born 1977-11-02.",
    "patient Kofi Mensah, MRN 20-4417-385, born 1948-07-21.",
    "patient Helga Brandt, MRN 73019462, born 1990-01-30.",
    "Tomas Okafor (MRN H7730214) of Springfield, IL 62704.",
    "Priya Raman (MRN 58-2291-604) of Dayton, OH 45402.",
    "Lars Nyberg (MRN 41187730) of Fresno, CA 93721.",
    "Rosa Delgado (MRN H3062519) of Albany, NY 12207.",
    "referred by Dr. Whitfield; call (614) 555-0193.",
    "referred by Dr. Castellanos; call (312) 555-0148.",
    "referred by Dr. Oyelaran; call (907) 555-0176.",
    "referred by Dr. Lindqvist; call (505) 555-0122.",
    "patient lives at 4127 Birchwood Lane, MRN H9014452.",
    "patient lives at 88 Quarry Hill Road, MRN 66-1803-257.",
    "patient lives at 2390 Marlowe Street, MRN 30558146.",
    "patient lives at 715 Ferncliff Avenue, MRN H2247968.",
)


class LeakageGateSettings(GateSettings):
    """`[gates.leakage]`: the identity texts, the server-eval images they caption, how far over the median."""

    texts: list[str] = Field(default_factory=lambda: list(IDENTITIES), min_length=2)
    images: int = Field(8, ge=1)  # text i is scored as the caption of server-eval image i mod images
    max_excess: float = Field(5.0, gt=0.0)  # mean preference (nats) over the median site's allowed
    confidence: float = Field(0.99, ge=0.5, lt=1.0)  # one-sided: a stray only if clearly over max_excess

    def judges_sites(self) -> bool:
        return True


def excess_figures(preferences: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per site: its mean preference for identities, and its excess over the per-item median site (with its SE)."""
    return {
        site: {"preference": statistics.fmean(preferences[site]), "excess": excess, "standard_error": error}
        for site, (excess, error) in gaps_from_median(preferences).items()
    }


@register_gate("leakage", LeakageGateSettings)
def leakage_gate(settings: LeakageGateSettings) -> Gate:
    """Rejects a candidate holding a site whose own adapter clearly prefers identities more than the median site."""
    z = z_score(settings.confidence)

    def judge(evidence: RoundEvidence) -> dict:
        preferences = evidence.site_preferences or {}
        if (undecided := unjudged(settings, evidence, preferences)) is not None:
            return undecided
        per_site = excess_figures(preferences)
        strays = sorted(
            site
            for site, figures in per_site.items()
            if figures["excess"] - z * figures["standard_error"] > settings.max_excess
        )
        figures = {"scored": len(per_site), "judged": True, "sites": per_site, "strays": strays}
        reason = "; ".join(f"{site}: prefers identities clearly over {settings.max_excess} more" for site in strays)
        return outcome(settings, not strays, figures, reason)

    return judge
