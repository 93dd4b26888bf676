"""Site-level central DP: Flower's DP strategy wrappers around FedAvg, and the ε of the releases so far.

Flower's wrappers add Gaussian noise of std noise_multiplier * clipping_norm / sampled sites to the average of
clipped updates. Every aggregate the server computes is a release (a rejected one too: the gate saw it), so
releases are composed in Flower's RDP accountant without subsampling amplification: Flower samples sites with
`random.sample`, which Flower's accountant does not amplify. For adaptive clipping, Flower takes the configured
noise multiplier as the effective one of the update and the clipped-count release together (Andrew et al. 2021,
Theorem 1), so each release is accounted as one Gaussian mechanism with that multiplier.
"""

from __future__ import annotations

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    Strategy,
)
from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from contract.run_config import CentralDpSection, RunConfig


def with_central_dp(strategy: FedAvg, config: RunConfig) -> Strategy:
    """strategy inside the Flower DP wrapper that config.privacy.central names."""
    central, sampled = config.privacy.central, config.sites_per_round()
    if central.adaptive:
        wrapper = (
            DifferentialPrivacyServerSideAdaptiveClipping
            if central.clipping == "server"
            else DifferentialPrivacyClientSideAdaptiveClipping
        )
        return wrapper(
            strategy,
            central.noise_multiplier,
            sampled,
            initial_clipping_norm=central.clipping_norm,
            clipped_count_stddev=central.clipped_count_stddev,
        )
    wrapper = (
        DifferentialPrivacyServerSideFixedClipping
        if central.clipping == "server"
        else DifferentialPrivacyClientSideFixedClipping
    )
    return wrapper(strategy, central.noise_multiplier, central.clipping_norm, sampled)


class CentralLedger:
    """Central ε after each release, from Flower's RDP accountant (rebuilt from the release count on resume)."""

    def __init__(self, central: CentralDpSection, sampled: int, releases: int = 0) -> None:
        self.central = central
        self.event = GaussianPrivacyEvent(central.noise_multiplier, sampled, sampled)
        self.accountant = RdpAccountant(
            PrivacyConfig(
                target_delta=central.delta,
                population_size=sampled,
                neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                sampling_method=SamplingMethod.NO_AMPLIFICATION,
            )
        )
        if releases:
            self.accountant.compose(self.event, releases)

    def release(self) -> None:
        """Count one more noised aggregate."""
        self.accountant.compose(self.event)

    def record(self, strategy: Strategy) -> dict:
        """The figures of metrics.jsonl's privacy.central."""
        spent = self.accountant.get_privacy_spent()
        return {
            "epsilon": spent.epsilon if spent.num_releases else 0.0,
            "delta": spent.delta,
            "releases": spent.num_releases,
            "noise_multiplier": self.central.noise_multiplier,
            "clipping": self.central.clipping,
            "adaptive": self.central.adaptive,
            "clipping_norm": float(getattr(strategy, "clipping_norm", self.central.clipping_norm)),
            "accountant": "rdp",
        }
