"""The privacy gate: each site's DP-SGD ε and the central ε within their budgets."""

from __future__ import annotations

from pydantic import Field

from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate
from evaluation.privacy_budget import check_budgets


class PrivacyGateSettings(GateSettings):
    """`[gates.privacy]`: budgets; a site's own ledger budget applies, lowered by site_epsilon when set."""

    site_epsilon: float | None = Field(None, gt=0.0)  # no site's ε may exceed it (nor its own budget)
    central_epsilon: float | None = Field(None, gt=0.0)  # the central ε's budget; unset: recorded, not judged


@register_gate("privacy", PrivacyGateSettings)
def privacy_gate(settings: PrivacyGateSettings) -> Gate:
    """Rejects a round after which a site's ε or the central ε is over its budget."""

    def judge(evidence: RoundEvidence) -> dict:
        sites = (evidence.privacy or {}).get("sites") or {}
        central = (evidence.privacy or {}).get("central")
        epsilons = {site: float(figures["epsilon"]) for site, figures in sites.items()}
        budgets = {
            site: min(float(figures["budget_epsilon"]), settings.site_epsilon or float("inf"))
            for site, figures in sites.items()
        }
        judged_central = central is not None and settings.central_epsilon is not None
        check = check_budgets(
            epsilons,
            budgets,
            float(central["epsilon"]) if judged_central else None,
            settings.central_epsilon if judged_central else None,
        )
        figures = {
            "sites_checked": len(epsilons),
            "sites_over": list(check.sites_over),
            "central_epsilon": float(central["epsilon"]) if central is not None else None,
            "central_over": check.central_over,
            "max_budget_share": check.max_ratio,
        }
        reasons = [f"site(s) over budget: {', '.join(check.sites_over)}"] if check.sites_over else []
        if check.central_over:
            reasons.append(f"central ε over {settings.central_epsilon}")
        return outcome(settings, not reasons, figures, "; ".join(reasons))

    return judge
