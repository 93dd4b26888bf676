"""The updates gate: each site's update against the others' (its size against the median, its direction against
the mean of the rest), so that a scaled, noisy or reversed update is caught before its effect shows in accuracy."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

import torch
from pydantic import Field

from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate

MIN_UPDATES = 2  # fewer: nothing to compare an update with, and the gate cannot judge


class UpdatesGateSettings(GateSettings):
    """`[gates.updates]`: how far a site's update may stray from the round's other updates."""

    max_norm_ratio: float = Field(3.0, gt=1.0)  # a site's update norm over the median norm of the round's updates
    min_cosine: float = Field(-0.5, ge=-1.0, lt=1.0)  # cosine of a site's update to the mean of the others' updates


def flat_update(update: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One site's update (its adapter minus the current global) as one float64 vector, keys in sorted order."""
    return torch.cat([update[key].detach().reshape(-1).to(torch.float64) for key in sorted(update)])


def update_figures(updates: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, float]]:
    """Per site: its update's norm, that norm over the median of all, its cosine to the mean of the others'."""
    sites = sorted(updates)
    vectors = torch.stack([flat_update(updates[site]) for site in sites])
    norms = vectors.norm(dim=1)
    median = statistics.median(norms.tolist())
    total = vectors.sum(dim=0)
    figures = {}
    for index, site in enumerate(sites):
        others = (total - vectors[index]) / (len(sites) - 1)
        denominator = float(norms[index] * others.norm())
        cosine = float(vectors[index] @ others) / denominator if denominator > 0 else 0.0
        figures[site] = {
            "norm": float(norms[index]),
            "norm_ratio": float(norms[index]) / median if median > 0 else float("inf"),
            "cosine": cosine,
        }
    return figures


@register_gate("updates", UpdatesGateSettings)
def updates_gate(settings: UpdatesGateSettings) -> Gate:
    """Rejects a candidate holding an update far larger than the round's median, or pointing away from the rest."""

    def judge(evidence: RoundEvidence) -> dict:
        if evidence.server_round == 0:
            return outcome(settings, True, {"updates": 0})  # the starting model holds no update
        updates = evidence.updates or {}
        if len(updates) < MIN_UPDATES:
            return outcome(settings, False, {"updates": len(updates)}, f"cannot judge: {len(updates)} update(s)")
        per_site = update_figures(updates)
        strays = {
            site: figures
            for site, figures in per_site.items()
            if figures["norm_ratio"] > settings.max_norm_ratio or figures["cosine"] < settings.min_cosine
        }
        figures = {
            "updates": len(per_site),
            "sites": per_site,
            "max_norm_ratio": max(f["norm_ratio"] for f in per_site.values()),
            "min_cosine": min(f["cosine"] for f in per_site.values()),
            "strays": sorted(strays),
        }
        reason = "; ".join(
            f"{site}: norm {f['norm_ratio']:.2f}x median, cosine {f['cosine']:.2f} to the others"
            for site, f in strays.items()
        )
        return outcome(settings, not strays, figures, reason)

    return judge
