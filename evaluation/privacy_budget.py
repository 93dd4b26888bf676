"""Privacy figures: which ε spent is over its budget, and the largest share of a budget spent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetCheck:
    """Sites over budget (sorted), whether the central ε is over its budget, and the largest ε/budget."""

    sites_over: tuple[str, ...]
    central_over: bool
    max_ratio: float  # 0 when nothing was checked


def check_budgets(
    site_epsilons: Mapping[str, float],
    site_budgets: Mapping[str, float],
    central_epsilon: float | None = None,
    central_budget: float | None = None,
) -> BudgetCheck:
    """Compare each site's ε with its budget and the central ε with its own; over means ε > budget."""
    missing = sorted(set(site_epsilons) - set(site_budgets))
    if missing:
        raise ValueError(f"no budget for site(s) {', '.join(missing)}")
    if (central_epsilon is None) != (central_budget is None):
        raise ValueError("central_epsilon and central_budget come together")
    budgets = [*site_budgets.values(), *([central_budget] if central_budget is not None else [])]
    if any(budget <= 0 for budget in budgets):
        raise ValueError("every budget must be positive")
    ratios = [epsilon / site_budgets[site] for site, epsilon in site_epsilons.items()]
    if central_epsilon is not None and central_budget is not None:
        ratios.append(central_epsilon / central_budget)
    return BudgetCheck(
        sites_over=tuple(sorted(site for site, epsilon in site_epsilons.items() if epsilon > site_budgets[site])),
        central_over=central_epsilon is not None and central_budget is not None and central_epsilon > central_budget,
        max_ratio=max(ratios, default=0.0),
    )
