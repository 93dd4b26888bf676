"""Flower's aggregation strategies, chosen by config, with rollback and resume of their state."""

from __future__ import annotations

import copy

import numpy as np
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedMedian, FedProx, FedTrimmedAvg, FedYogi, Krum, Strategy

from contract.messages import UNIT_WEIGHT
from contract.run_config import RunConfig
from server.central_dp import with_central_dp

# Attributes in which Flower's server optimizers keep state between rounds: FedAdam's and FedYogi's moments
# (dicts by array name), FedAvgM's momentum (a list in array order).
OPTIMIZER_STATE = ("m_t", "v_t")
MOMENTUM = "momentum_vector"


def build_strategy(config: RunConfig) -> Strategy:
    """The Flower strategy named by aggregation.strategy, sampling as the federation section says.

    Under central DP: FedAvg with every site weighted the same, inside Flower's DP wrapper.
    """
    agg, fed = config.aggregation, config.federation
    common = {
        "fraction_train": fed.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": fed.min_train_nodes,
        "min_evaluate_nodes": 1,
        "min_available_nodes": fed.sites if fed.fraction_train == 1.0 else fed.min_train_nodes,
    }
    if config.privacy.central.enabled:
        return with_central_dp(FedAvg(**common, weighted_by_key=UNIT_WEIGHT), config)
    if agg.strategy == "fedavg":
        return FedAvg(**common)
    if agg.strategy == "fedavgm":
        return FedAvgM(**common, server_learning_rate=agg.server_rate(), server_momentum=agg.server_momentum)
    if agg.strategy == "fedprox":
        return FedProx(**common, proximal_mu=agg.proximal_mu)
    if agg.strategy == "fedadam":
        return FedAdam(**common, eta=agg.server_rate())
    if agg.strategy == "fedyogi":
        return FedYogi(**common, eta=agg.server_rate())
    if agg.strategy == "fedmedian":
        return FedMedian(**common)
    if agg.strategy == "fedtrimmedavg":
        return FedTrimmedAvg(**common, beta=agg.trim_beta)
    return Krum(**common, num_malicious_nodes=agg.num_malicious_nodes)


def snapshot(strategy: Strategy) -> dict:
    """A deep copy of the strategy's attributes, taken before aggregation."""
    return copy.deepcopy(vars(strategy))


def restore(strategy: Strategy, saved: dict) -> None:
    """Undo whatever aggregation changed (server optimizer moments of a rejected round)."""
    vars(strategy).clear()
    vars(strategy).update(saved)


def optimizer_state(strategy: Strategy) -> dict[str, np.ndarray]:
    """Server-optimizer moments as flat 'attribute/key' arrays (empty for stateless strategies)."""
    state = {}
    for attribute in OPTIMIZER_STATE:
        for key, array in (getattr(strategy, attribute, None) or {}).items():
            state[f"{attribute}/{key}"] = np.asarray(array)
    for index, array in enumerate(getattr(strategy, MOMENTUM, None) or []):
        state[f"{MOMENTUM}/{index}"] = np.asarray(array)
    return state


def load_optimizer_state(strategy: Strategy, state: dict[str, np.ndarray]) -> None:
    """Put saved moments back on a freshly built strategy (resume)."""
    for attribute in OPTIMIZER_STATE:
        prefix = f"{attribute}/"
        values = {key[len(prefix) :]: array for key, array in state.items() if key.startswith(prefix)}
        if values:
            setattr(strategy, attribute, values)
    prefix = f"{MOMENTUM}/"
    momentum = sorted((int(key[len(prefix) :]), array) for key, array in state.items() if key.startswith(prefix))
    if momentum:
        setattr(strategy, MOMENTUM, [array for _, array in momentum])
