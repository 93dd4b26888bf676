"""ε of a DP-SGD history with Opacus's accountants, and the noise multiplier that reaches a target ε."""

from __future__ import annotations

import warnings

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

# One entry per run of identical steps: (noise multiplier, sample rate, steps), as Opacus's accountants keep it.
Step = tuple[float, float, int]


class UnreachableTarget(ValueError):
    """No noise multiplier reaches the target ε in the planned steps."""


def epsilon(history: list[Step], delta: float, accountant: str) -> float:
    """ε spent by a history of Poisson-subsampled Gaussian steps, at δ (0.0 for an empty history)."""
    if not history:
        return 0.0
    engine = create_accountant(mechanism=accountant)
    engine.history = [(float(sigma), float(rate), int(steps)) for sigma, rate, steps in history]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, if loose
        warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
        return float(engine.get_epsilon(delta=delta))


def planned_noise_multiplier(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """The smallest noise multiplier (to Opacus's search tolerance) that keeps ε ≤ target after all planned steps."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
            return float(
                get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=accountant,
                )
            )
    except ValueError:
        raise UnreachableTarget(
            f"privacy.dp.target_epsilon = {target_epsilon} cannot be reached in {steps} steps at sample rate "
            f"{sample_rate:.4g} and delta {delta:g} (the noise multiplier would exceed 1e6)"
        ) from None


def merged(history: list[Step], step: Step) -> list[Step]:
    """history with step appended, folded into the last entry when noise and sample rate are the same."""
    if history and history[-1][:2] == step[:2]:
        sigma, rate, steps = history[-1]
        return [*history[:-1], (sigma, rate, steps + step[2])]
    return [*history, step]
