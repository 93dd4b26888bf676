"""The figures of one empirical privacy audit: guesses from canary scores, the ε lower bound beside the accountant's
ε, membership AUC and exposure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean

from audit.empirical import epsilon_lower_bound, exposure, guesses, membership_auc

CONFIDENCE = 0.95


def accountant_epsilon(rows: Sequence[dict]) -> float:
    """The largest ε any accountant recorded (sites' DP-SGD ledgers, central DP) in metrics rows; ∞ without DP."""
    spent = []
    for row in rows:
        privacy = row.get("privacy") or {}
        spent += [float(site["epsilon"]) for site in (privacy.get("sites") or {}).values() if "epsilon" in site]
        if privacy.get("central"):
            spent.append(float(privacy["central"]["epsilon"]))
    return max(spent, default=math.inf)


def default_guesses(canaries: int) -> int:
    """Guesses on each side when not given: a fifth of the canaries (at least one)."""
    return max(1, canaries // 5)


def audit_figures(
    scores: Sequence[float],
    included: Sequence[bool],
    ranks: Sequence[int],
    candidates: int,
    k: int,
    delta: float,
    accountant: float,
) -> dict:
    """JSON-ready figures: k "member" guesses on the highest scores and k "non-member" on the lowest, the ε lower
    bound at 95% confidence, AUC (None unless canaries are both in and out), the mean exposure of included and
    excluded canaries, and the accountant's ε (None when the run had no DP: unbounded)."""
    m = len(scores)
    r, v = guesses(scores, included, k, k)
    bound = epsilon_lower_bound(m, r, v, delta, alpha=1 - CONFIDENCE)
    members = sum(map(bool, included))
    exposures = [exposure(rank, candidates) for rank in ranks]
    inside = [value for value, member in zip(exposures, included) if member]
    outside = [value for value, member in zip(exposures, included) if not member]
    return {
        "canaries": m,
        "included": members,
        "guesses": r,
        "correct": v,
        "delta": delta,
        "confidence": CONFIDENCE,
        "epsilon_lower_bound": bound,
        "accountant_epsilon": None if math.isinf(accountant) else accountant,
        "within_accountant": bound <= accountant,
        "auc": membership_auc(scores, included) if 0 < members < m else None,
        "candidates": candidates,
        "exposure_included": fmean(inside) if inside else None,
        "exposure_excluded": fmean(outside) if outside else None,
    }
