"""Privacy accounting: ε against Google's dp-accounting, target-ε planning, the ledger, budgets and bad settings."""

from __future__ import annotations

import json

import dp_accounting
import pytest
from dp_accounting import pld, rdp

from client.dp_round import begin_dp_round
from contract.messages import RoundInstruction
from contract.node_config import NodeConfig
from contract.run_config import ConfigError, RunConfig, load_config
from privacy.dp.accounting import epsilon
from privacy.dp.ledger import DpPlan, Ledger, LedgerError, LedgerFile
from privacy.dp.planning import DpSettingsError, site_plan

DELTA = 1e-5


def _independent_epsilon(noise_multiplier: float, sample_rate: float, steps: int, accountant: str) -> float:
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps
    )
    engine = rdp.RdpAccountant() if accountant == "rdp" else pld.PLDAccountant(value_discretization_interval=1e-4)
    engine.compose(event)
    return engine.get_epsilon(DELTA)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
@pytest.mark.parametrize("target", [1.0, 4.0, 8.0])
def test_planned_epsilon_is_reached_and_matches_dp_accounting(accountant, target):
    config = load_config(
        overrides=[
            "privacy.dp.enabled=true",
            f"privacy.dp.target_epsilon={target}",
            f"privacy.dp.accountant='{accountant}'",
        ]
    )
    plan = site_plan(config.privacy.dp, config.train, config.federation.rounds, records=192)
    assert plan.sample_rate == pytest.approx(16 / 192) and plan.planned_steps == 15 * 25
    ledger = Ledger("fed", plan)
    for server_round in range(1, 16):
        ledger = ledger.after(server_round, config.train.local_steps)
    recorded = ledger.epsilon()
    assert target * 0.97 <= recorded <= target  # Opacus's search stops within its tolerance below the target
    independent = _independent_epsilon(plan.noise_multiplier, plan.sample_rate, ledger.steps, accountant)
    assert recorded == pytest.approx(independent, rel=0.02)


def test_epsilon_rises_with_every_round_and_history_is_cumulative():
    plan = DpPlan(1.0, 0.05, 1.0, DELTA, "rdp", 100)
    ledger, spent = Ledger("fed", plan), [0.0]
    for server_round in range(1, 5):
        ledger = ledger.after(server_round, 25)
        spent.append(ledger.epsilon())
    assert all(b > a for a, b in zip(spent, spent[1:]))
    assert ledger.history == [(1.0, 0.05, 100)] and ledger.steps == 100
    assert spent[-1] == pytest.approx(epsilon([(1.0, 0.05, 100)], DELTA, "rdp"))


def test_ledger_round_trips_and_refuses_damage(tmp_path):
    store = LedgerFile(tmp_path, "fed")
    ledger = Ledger("fed", DpPlan(1.0, 0.05, 1.0, DELTA, "prv", 100)).after(1, 25)
    store.save(ledger)
    assert store.load(recorded_steps=25) == ledger
    text = store.path.read_text()
    edited = json.loads(text)
    edited["ledger"]["history"] = [[1.0, 0.05, 1]]  # fewer steps, checksum left as it was
    store.path.write_text(json.dumps(edited))
    with pytest.raises(LedgerError, match="checksum"):
        store.load(recorded_steps=0)
    store.path.write_text(text[: len(text) // 2])
    with pytest.raises(LedgerError, match="corrupt"):
        store.load(recorded_steps=0)
    store.path.write_text(text)
    with pytest.raises(LedgerError, match="rolled-back"):
        store.load(recorded_steps=50)
    other = LedgerFile(tmp_path, "other")
    other.path.write_text(text)
    with pytest.raises(LedgerError, match="another federation"):
        other.load(recorded_steps=0)


def test_a_missing_ledger_is_refused_once_the_server_recorded_steps(tmp_path):
    assert LedgerFile(tmp_path, "fed").load(recorded_steps=0) is None  # a site that never trained here
    with pytest.raises(LedgerError, match="refusing to restart at epsilon 0"):
        LedgerFile(tmp_path, "fed").load(recorded_steps=25)


def _round(
    config: RunConfig,
    tmp_path,
    server_round: int,
    records: int = 192,
    node_config: dict | None = None,
    recorded: int = 0,
):
    instruction = RoundInstruction(config, "", "", "fed", "", {"site-0": recorded}, server_round=server_round)
    node = NodeConfig(node_id=1, name="site-0", state_path=str(tmp_path), **(node_config or {}))
    return begin_dp_round(instruction, node, records)


def test_a_site_refuses_the_round_that_would_pass_its_budget(tmp_path):
    config = load_config(
        overrides=["privacy.dp.enabled=true", "privacy.dp.noise_multiplier=1.0", "privacy.dp.budget_epsilon=5.5"]
    )
    rounds = [_round(config, tmp_path, r, recorded=25 * (r - 1)) for r in range(1, 4)]
    assert [r.refused for r in rounds] == [False, False, True]
    assert 0 < rounds[0].ledger.epsilon() < rounds[1].ledger.epsilon() <= 5.5
    refused = rounds[2]
    assert refused.ledger.steps == 50  # the refused round spent nothing
    assert LedgerFile(tmp_path, "fed").load(50).steps == 50
    assert refused.metrics()["dp-refused"] == 1 and refused.metrics()["dp-epsilon"] == rounds[1].ledger.epsilon()


def test_the_spend_is_written_before_training_and_a_site_may_lower_its_budget(tmp_path):
    config = load_config(overrides=["privacy.dp.enabled=true", "privacy.dp.target_epsilon=8"])
    first = _round(config, tmp_path, 1)
    assert LedgerFile(tmp_path, "fed").load(0) == first.ledger and first.ledger.steps == 25
    lowered = _round(config, tmp_path / "other", 1, node_config={"dp_budget_epsilon": 0.5})
    assert lowered.refused and lowered.budget == 0.5


def test_delta_must_be_below_one_over_n_and_tiny_sites_sample_everything():
    config = load_config(overrides=["privacy.dp.enabled=true", "privacy.dp.target_epsilon=8", "privacy.dp.delta=0.01"])
    with pytest.raises(DpSettingsError, match=r"privacy\.dp\.delta = 0\.01 must be below 1/n"):
        site_plan(config.privacy.dp, config.train, 15, records=192)
    config = load_config(overrides=["privacy.dp.enabled=true", "privacy.dp.target_epsilon=8"])
    small = site_plan(config.privacy.dp, config.train, 15, records=10)
    assert small.sample_rate == 1.0 and small.noise_multiplier > 1.0


def test_an_unreachable_target_names_the_key():
    config = load_config(overrides=["privacy.dp.enabled=true", "privacy.dp.target_epsilon=0.001"])
    with pytest.raises(DpSettingsError, match=r"privacy\.dp\.target_epsilon = 0\.001 cannot be reached in 375 steps"):
        site_plan(config.privacy.dp, config.train, 15, records=192)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["privacy.dp.enabled=true"], "exactly one of target_epsilon and noise_multiplier"),
        (
            ["privacy.dp.enabled=true", "privacy.dp.target_epsilon=8", "privacy.dp.noise_multiplier=1.0"],
            "exactly one of target_epsilon and noise_multiplier",
        ),
        (["privacy.dp.enabled=true", "privacy.dp.noise_multiplier=1.0"], "budget_epsilon: required"),
        (["privacy.dp.delta=0"], "privacy.dp.delta"),
        (
            ["privacy.dp.enabled=true", "privacy.dp.noise_multiplier=0", "privacy.dp.budget_epsilon=8"],
            "privacy.dp.noise_multiplier",
        ),
        (["privacy.dp.accountant='gdp'"], "privacy.dp.accountant"),
        (["privacy.central.enabled=true", "aggregation.strategy='fedadam'"], "aggregation.strategy = 'fedavg'"),
        (["privacy.central.enabled=true", "privacy.central.adaptive=true"], "privacy.central.noise_multiplier"),
    ],
)
def test_bad_dp_settings_fail_before_training(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(overrides=overrides)
