"""ε of a DP-SGD history with Opacus's accountants."""

from __future__ import annotations

import warnings

from opacus.accountants import create_accountant

# One entry per run of identical steps: (noise multiplier, sample rate, steps), as Opacus's accountants keep it.
Step = tuple[float, float, int]


def epsilon(history: list[Step], delta: float, accountant: str) -> float:
    """ε spent by a history of Poisson-subsampled Gaussian steps, at δ (0.0 for an empty history)."""
    if not history:
        return 0.0
    engine = create_accountant(mechanism=accountant)
    engine.history = [(float(sigma), float(rate), int(steps)) for sigma, rate, steps in history]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, if loose
        warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
        return float(engine.get_epsilon(delta=delta))


def merged(history: list[Step], step: Step) -> list[Step]:
    """history with step appended, folded into the last entry when noise and sample rate are the same."""
    if history and history[-1][:2] == step[:2]:
        sigma, rate, steps = history[-1]
        return [*history[:-1], (sigma, rate, steps + step[2])]
    return [*history, step]
