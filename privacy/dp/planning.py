"""A site's DP-SGD plan for the whole federation: sample rate, noise multiplier and the checks before training."""

from __future__ import annotations

from fedvlm.config import DpSection, TrainSection
from privacy.dp.accounting import planned_noise_multiplier
from privacy.dp.ledger import DpPlan


class DpSettingsError(ValueError):
    """DP settings that cannot hold at this site (δ too large for its size, unreachable ε); names the key."""


def site_plan(dp: DpSection, train: TrainSection, rounds: int, records: int) -> DpPlan:
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
        try:
            noise_multiplier = planned_noise_multiplier(dp.target_epsilon, dp.delta, sample_rate, steps, dp.accountant)
        except ValueError as error:
            raise DpSettingsError(str(error)) from None
    return DpPlan(noise_multiplier, sample_rate, dp.max_grad_norm, dp.delta, dp.accountant, steps, dp.record_pair)
