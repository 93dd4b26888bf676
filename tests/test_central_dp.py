"""Central DP pieces: the client clipping mod, the strategy wrappers, and the central ledger."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
)

from client.central_clipping import central_clipping_mod
from contract.messages import BUDGET_EXHAUSTED, SITE_RECORD, RoundInstruction
from contract.run_config import RunConfig, load_config
from server.central_dp import CentralLedger
from server.strategies import build_strategy

GLOBAL = {"lora_B": torch.zeros(4, 3), "lora_B_2": torch.zeros(5)}
CENTRAL = ["privacy.central.enabled=true", "privacy.central.clipping='client'", "privacy.central.clipping_norm=0.1"]


def _instruction(config: RunConfig) -> dict:
    return dict(RoundInstruction(config, "0" * 64, "", "federation", "").encode())


def _train_message(config_items: dict) -> Message:
    content = RecordDict({"arrays": ArrayRecord(GLOBAL), "config": ConfigRecord(config_items)})
    return Message(content, dst_node_id=0, message_type="train")


def _context() -> Context:
    return Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})


def _update_norm(reply: Message) -> float:
    arrays = reply.content["arrays"].to_numpy_ndarrays()
    return float(np.sqrt(sum((a.astype(np.float64) ** 2).sum() for a in arrays)))


def _trained(msg: Message, context: Context) -> Message:
    update = {key: value + 1.0 for key, value in GLOBAL.items()}  # norm sqrt(17), far above the clip
    return Message(
        RecordDict({"arrays": ArrayRecord(update), "metrics": MetricRecord({"num-examples": 3})}), reply_to=msg
    )


def test_the_mod_clips_updates_when_the_server_sends_a_norm(task_identity):
    config = load_config(overrides=CENTRAL)
    message = _train_message({**_instruction(config), "clipping_norm": 0.1})
    assert _update_norm(central_clipping_mod(message, _context(), _trained)) == pytest.approx(0.1, rel=1e-5)
    unclipped = _train_message(_instruction(config))
    assert _update_norm(central_clipping_mod(unclipped, _context(), _trained)) == pytest.approx(17**0.5)


def test_a_site_out_of_budget_passes_its_refusal_through_the_mod(task_identity):
    config = load_config(overrides=CENTRAL)
    message = _train_message({**_instruction(config), "clipping_norm": 0.1})

    def refuse(msg: Message, context: Context) -> Message:
        status = ConfigRecord({"name": "site-0", "status": BUDGET_EXHAUSTED})
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 0}), SITE_RECORD: status}), reply_to=msg)

    reply = central_clipping_mod(message, _context(), refuse)
    assert not reply.has_error() and reply.content[SITE_RECORD]["status"] == BUDGET_EXHAUSTED


def test_build_strategy_wraps_fedavg_with_equal_site_weights():
    server_fixed = build_strategy(load_config(overrides=["privacy.central.enabled=true"]))
    assert isinstance(server_fixed, DifferentialPrivacyServerSideFixedClipping)
    assert server_fixed.strategy.weighted_by_key == "unit-weight" and server_fixed.num_sampled_clients == 4
    adaptive = build_strategy(
        load_config(overrides=[*CENTRAL, "privacy.central.adaptive=true", "privacy.central.noise_multiplier=0.3"])
    )
    assert isinstance(adaptive, DifferentialPrivacyClientSideAdaptiveClipping) and adaptive.clipping_norm == 0.1


def test_central_ledger_resumes_from_the_release_count():
    central = load_config(overrides=["privacy.central.enabled=true"]).privacy.central
    ledger = CentralLedger(central, sampled=4)
    for _ in range(3):
        ledger.release()
    strategy = build_strategy(load_config(overrides=["privacy.central.enabled=true"]))
    resumed = CentralLedger(central, sampled=4, releases=3)
    assert resumed.record(strategy) == ledger.record(strategy)
    assert ledger.record(strategy)["releases"] == 3 and ledger.record(strategy)["epsilon"] > 0
