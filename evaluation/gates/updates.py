"""The updates gate: each site's update against the others' (its size against the median, its direction against
the mean of the rest), so that a scaled, noisy, reversed or overtrained update is caught before its effect shows in
accuracy.

Direction is judged only against others that agree among themselves, and only while the learning rate is not near
zero. Late in a run, with the rate decayed, honest updates are small and point where their own site's data pull
the converged model: measured on the hospital demo with three sites left, two honest sites agreed at 0.46 and the
third pointed away at -0.55 in the last round (rate share 0.006), which is what a reversed update looks like; an
update that small can reverse little. Nor is there anyone to agree with when only two updates are left, and no
telling which of a pair is the reversed one.

Size is judged in every round against `max_norm_ratio`, and while the rate is not near zero against the tighter
`max_norm_ratio_learning`: sites that train the same steps at the same rate make updates of nearly one size (on the
hospital demo, 507 distinct honest site-rounds at rate share >= 0.1 over three data seeds stayed within 1.19 of the
median), while a site that trains more steps to teach a bias in fewer rounds makes a larger one (4x the steps:
1.41-1.57 in its first round, 1.9-2.9 later). Late in a run honest sizes spread (up to 1.47 in a last round at rate
share 0.006)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping

import torch
from pydantic import Field, ValidationInfo, field_validator

from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate

MIN_UPDATES = 2  # fewer: nothing to compare an update with, and the gate cannot judge


class UpdatesGateSettings(GateSettings):
    """`[gates.updates]`: how far a site's update may stray from the round's other updates."""

    max_norm_ratio: float = Field(3.0, gt=1.0)  # a site's update norm over the median norm of the round's updates
    max_norm_ratio_learning: float = Field(1.3, gt=1.0)  # the same, while the rate share is >= min_rate_share
    min_cosine: float = Field(-0.2, ge=-1.0, lt=1.0)  # cosine of a site's update to the mean of the others' updates
    min_agreement: float = Field(0.2, gt=0.0, lt=1.0)  # the others' mean pairwise cosine for direction to be judged
    min_rate_share: float = Field(0.1, ge=0.0, le=1.0)  # the round's mean rate over the peak for direction to be judged

    def judges_sites(self) -> bool:
        return True

    @field_validator("max_norm_ratio_learning")
    @classmethod
    def _within_max_norm_ratio(cls, value: float, info: ValidationInfo) -> float:
        ceiling = info.data.get("max_norm_ratio", value)
        if value > ceiling:
            raise ValueError(f"{value} is over max_norm_ratio ({ceiling}), the limit in every round")
        return value


def flat_update(update: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One site's update (its adapter minus the current global) as one float64 vector, keys in sorted order."""
    return torch.cat([update[key].detach().reshape(-1).to(torch.float64) for key in sorted(update)])


def _mean_pairwise_cosine(cosines: torch.Tensor, members: list[int]) -> float | None:
    """Mean cosine over the pairs of members; None for fewer than two."""
    pairs = list(itertools.combinations(members, 2))
    return sum(float(cosines[i, j]) for i, j in pairs) / len(pairs) if pairs else None


def update_figures(updates: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, float | None]]:
    """Per site: its update's norm, that norm over the median of all, its cosine to the mean of the others', and
    the others' agreement (their mean pairwise cosine; None with fewer than two others)."""
    sites = sorted(updates)
    vectors = torch.stack([flat_update(updates[site]) for site in sites])
    gram = vectors @ vectors.T
    norms = gram.diagonal().sqrt()
    scale = torch.outer(norms, norms)
    cosines = torch.where(scale > 0, gram / scale.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    median = statistics.median(norms.tolist())
    figures = {}
    for index, site in enumerate(sites):
        others = [other for other in range(len(sites)) if other != index]
        others_norm = float(gram[others][:, others].sum().clamp_min(0).sqrt())
        denominator = float(norms[index]) * others_norm
        figures[site] = {
            "norm": float(norms[index]),
            "norm_ratio": float(norms[index]) / median if median > 0 else float("inf"),
            "cosine": float(gram[index, others].sum()) / denominator if denominator > 0 else 0.0,
            "agreement": _mean_pairwise_cosine(cosines, others),
        }
    return figures


def _stray_reason(figures: dict, settings: UpdatesGateSettings, learning: bool, norm_limit: float) -> str | None:
    """Why one site's update strays, or None (learning: the rate share is at least min_rate_share)."""
    if figures["norm_ratio"] > norm_limit:
        return f"norm {figures['norm_ratio']:.2f}x median (limit {norm_limit:g})"
    agreement = figures["agreement"]
    if not learning or agreement is None or agreement < settings.min_agreement:
        return None
    if figures["cosine"] >= settings.min_cosine:
        return None
    return f"cosine {figures['cosine']:.2f} to the others (who agree at {agreement:.2f})"


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
        learning = evidence.rate_share >= settings.min_rate_share
        norm_limit = settings.max_norm_ratio_learning if learning else settings.max_norm_ratio
        reasons = {site: _stray_reason(figures, settings, learning, norm_limit) for site, figures in per_site.items()}
        strays = {site: reason for site, reason in reasons.items() if reason is not None}
        figures = {
            "updates": len(per_site),
            "sites": per_site,
            "max_norm_ratio": max(f["norm_ratio"] for f in per_site.values()),
            "min_cosine": min(f["cosine"] for f in per_site.values()),
            "rate_share": evidence.rate_share,
            "direction_judged": learning,
            "norm_limit": norm_limit,
            "strays": sorted(strays),
        }
        return outcome(settings, not strays, figures, "; ".join(f"{site}: {why}" for site, why in strays.items()))

    return judge
