"""A site's DP-SGD plan for the whole federation: sample rate, noise multiplier and the checks before training."""

from __future__ import annotations

import warnings

from opacus.accountants.utils import get_noise_multiplier

from privacy.dp.ledger import DpPlan
from privacy.dp.settings import DpSettings
from vlm.training import TrainSettings


class DpSettingsError(ValueError):
    """DP settings that cannot hold at this site (δ too large for its size, unreachable ε); names the key."""


def planned_noise_multiplier(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """The smallest noise multiplier (to Opacus's search tolerance) that keeps ε ≤ target after all planned steps."""
    try:
        with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, if loose
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
        raise DpSettingsError(
            f"privacy.dp.target_epsilon = {target_epsilon} cannot be reached in {steps} steps at sample rate "
            f"{sample_rate:.4g} and delta {delta:g} (the noise multiplier would exceed 1e6)"
        ) from None


def site_plan(dp: DpSettings, train: TrainSettings, rounds: int, records: int) -> DpPlan:
    """Poisson rate batch_size/n (1.0 for a site smaller than one batch); noise fixed or reaching target ε."""
    if records < 1:
        raise DpSettingsError("no training record at this site")
    if dp.delta >= 1 / records:
        raise DpSettingsError(
            f"privacy.dp.delta = {dp.delta:g} must be below 1/n = {1 / records:.3g} for this site's {records} records"
        )
    sample_rate = min(1.0, train.batch_size / records)
    steps = rounds * train.local_steps
    if dp.noise_multiplier is not None:
        noise_multiplier = dp.noise_multiplier
    else:
        assert dp.target_epsilon is not None, "validated: one of target_epsilon and noise_multiplier"
        noise_multiplier = planned_noise_multiplier(dp.target_epsilon, dp.delta, sample_rate, steps, dp.accountant)
    return DpPlan(noise_multiplier, sample_rate, dp.max_grad_norm, dp.delta, dp.accountant, steps, dp.record_pair)
