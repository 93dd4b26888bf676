"""Gates in a real Flower simulation: a poisoned site is found, quarantined and left out; a rejection rolls back.

The poison and its gate come from the spy ServerApp (tests/spy_app), which Flower runs in its own process."""

from __future__ import annotations

import re

import pytest
import torch

from contract.data_layout import SERVER_EVAL
from contract.run_config import load_config
from evaluation import gates
from server.run_dir import RunDir
from simulations.runner import simulate
from tests.small_run import SMALL_RUN
from tests.spy import spied_simulate
from vlm.records import load_dataset

pytestmark = pytest.mark.slow

SMALL = [
    *SMALL_RUN,
    "aggregation.strategy='fedadam'",
    "gates.utility.mode='warn'",  # the real gates judge and record; on the near-chance tiny-test model they warn
    "gates.bias.mode='warn'",
    "gates.privacy={}",
    "gates.poison={}",
]
POISONED = "site-1"


def _poison_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gate "poison", as the spy ServerApp registers it, known here too so that the config naming it validates."""
    monkeypatch.setitem(gates.GATES, "poison", (gates.GateSettings, lambda settings: lambda evidence: {}))


def test_a_poisoned_site_is_found_quarantined_and_kept_out(tmp_path, tiny_model_dir, monkeypatch):
    _poison_gate(monkeypatch)
    config = load_config(None, [*SMALL, "federation.sites=3", "federation.rounds=4", "gates.quarantine_rounds=2"])
    run_dir = RunDir(tmp_path / "run")
    spied_simulate(config, run_dir.root, monkeypatch, poison_from=1, poisoned=POISONED)
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted"] * 5
    assert set(rows[0]["gates"]) == {"utility", "bias", "privacy", "poison"}
    assert rows[0]["gates"]["utility"]["mode"] == "warn" and "vqa_accuracy" in rows[0]["gates"]["utility"]["figures"]
    first = rows[1]
    assert first["gates"]["poison"] == {"passed": False} and first["sampled"] == 3
    assert first["attribution"]["suspects"] == [POISONED]
    assert {site: trial["passed"] for site, trial in first["attribution"]["trials"].items()} == {
        "site-0": False,
        "site-1": True,
        "site-2": False,
    }
    assert first["attribution"]["gates"]["poison"] == {"passed": True}
    assert first["aggregated_sites"] == ["site-0", "site-2"]
    assert first["quarantined"]["added"] == [POISONED] and first["quarantined"]["until"] == {POISONED: 3}
    assert first["adapter_hash"] != first["candidate_hash"]
    for row in rows[2:4]:  # kept out of sampling for gates.quarantine_rounds rounds
        assert (row["sampled"], row["quarantined"]["sites"], row["attribution"]) == (2, [POISONED], None)
        assert row["aggregated_sites"] == ["site-0", "site-2"]
    last = rows[4]  # back, on probation: caught again and kept out twice as long
    assert last["sampled"] == 3 and last["attribution"]["suspects"] == [POISONED]
    assert last["quarantined"]["until"] == {POISONED: 8}
    text = run_dir.metrics.read_text()
    assert '"hits"' not in text and "generations" not in text  # per-question results stay in memory


def test_too_few_sites_left_after_quarantine_skip_the_round_and_the_run_goes_on(tmp_path, tiny_model_dir, monkeypatch):
    _poison_gate(monkeypatch)
    config = load_config(None, [*SMALL, "federation.sites=3", "federation.rounds=3", "federation.min_train_nodes=2"])
    run_dir = RunDir(tmp_path / "run")
    # site-1 is quarantined in round 1 (rounds 2-4 out); site-2's node is gone in round 2: one site is left.
    spied_simulate(
        config, run_dir.root, monkeypatch, poison_from=1, poisoned=POISONED, leaves="site-2", leave_rounds=[2]
    )
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted", "accepted", "skipped", "accepted"]
    assert rows[1]["quarantined"]["added"] == [POISONED] and rows[1]["aggregated_sites"] == ["site-0", "site-2"]
    skipped = rows[2]
    assert skipped["reason"] == "1 sites left after quarantine, 2 required"
    assert (skipped["sampled"], skipped["participants"], skipped["aggregated_sites"]) == (0, 0, [])
    assert skipped["quarantined"]["sites"] == [POISONED]
    assert {result["passed"] for result in skipped["gates"].values()} == {None}  # nothing judged
    assert skipped["adapter_hash"] == rows[1]["adapter_hash"]
    # site-2 is back: the run goes on without the quarantined site
    assert (rows[3]["sampled"], rows[3]["aggregated_sites"]) == (2, ["site-0", "site-2"])
    assert rows[3]["adapter_hash"] != rows[1]["adapter_hash"]


def test_group_testing_finds_the_poisoned_site_among_halves(tmp_path, tiny_model_dir, monkeypatch):
    _poison_gate(monkeypatch)
    overrides = ["federation.sites=4", "federation.rounds=1", "gates.group_testing_from=4"]
    run_dir = RunDir(tmp_path / "run")
    spied_simulate(load_config(None, [*SMALL, *overrides]), run_dir.root, monkeypatch, poison_from=1, poisoned=POISONED)
    first = run_dir.read_metrics()[1]
    # Each half kept alone: site-0 with site-1 fails, site-2 with site-3 passes; within the failing half, site-0
    # need not be left out once site-1 is.
    trials = {left_out: trial["passed"] for left_out, trial in first["attribution"]["trials"].items()}
    assert trials == {"site-2,site-3": False, "site-0,site-1": True, "site-1": True}
    assert first["attribution"]["suspects"] == [POISONED] and first["quarantined"]["added"] == [POISONED]
    assert first["status"] == "accepted" and first["aggregated_sites"] == ["site-0", "site-2", "site-3"]


def test_a_rejected_round_keeps_the_global_and_the_server_optimizer_state(tmp_path, tiny_model_dir, monkeypatch):
    _poison_gate(monkeypatch)
    config = load_config(None, [*SMALL, "federation.sites=2", "federation.rounds=2", "gates.quarantine=false"])
    run_dir = RunDir(tmp_path / "run")
    spy = spied_simulate(config, run_dir.root, monkeypatch, poison_from=2, poisoned=POISONED)
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted", "accepted", "rejected"]
    assert rows[2]["attribution"] is None and rows[2]["aggregated_sites"] == []
    assert rows[2]["candidate_hash"] != rows[2]["adapter_hash"] == rows[1]["adapter_hash"]
    before, after = spy.moments(1), spy.moments(2)
    assert before.keys() == after.keys() and before
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_the_updates_gate_catches_a_sign_flipping_site_and_the_round_goes_on_without_it(tmp_path, tiny_model_dir):
    config = load_config(
        None,
        [
            *SMALL_RUN,
            "federation.sites=3",
            "federation.rounds=2",
            "data.descriptors=true",
            "gates.utility.mode='warn'",
            "gates.bias.mode='warn'",
            "gates.updates={}",
            "gates.contributions={mode = 'warn', questions = 16, swaps = {woman = 'man'}}",
            "gates.safety={mode = 'warn', probes = 2, max_new_tokens = 4, sites = true}",
            "gates.leakage={mode = 'warn', images = 2}",
            "simulation.adversary=[{site = 1, kind = 'sign-flip', from_round = 2}]",
        ],
    )
    run_dir = RunDir(tmp_path / "run")
    simulate(config, run_dir.root)
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted"] * 3
    honest = rows[1]["gates"]["updates"]
    assert honest["passed"] and honest["figures"]["strays"] == [] and rows[1]["attribution"] is None
    attacked = rows[2]
    gate = attacked["gates"]["updates"]
    assert not gate["passed"] and gate["figures"]["strays"] == [POISONED]
    assert (
        gate["figures"]["sites"][POISONED]["cosine"]
        < -0.2
        < min(figures["cosine"] for site, figures in gate["figures"]["sites"].items() if site != POISONED)
    )
    assert attacked["attribution"]["suspects"] == [POISONED]
    assert attacked["aggregated_sites"] == ["site-0", "site-2"] and attacked["quarantined"]["added"] == [POISONED]
    assert attacked["attribution"]["gates"]["updates"]["passed"]
    # Each site's own adapter answered 16 questions; the trial without the stray has two sites, too few to judge.
    contributions = rows[1]["gates"]["contributions"]
    assert contributions["mode"] == "warn" and contributions["figures"]["judged"] is True
    assert set(contributions["figures"]["sites"]) == {"site-0", "site-1", "site-2"}
    assert all(figures["likelihood_standard_error"] > 0 for figures in contributions["figures"]["sites"].values())
    # ... and again with the sex swapped in each question that names one.
    records, _ = load_dataset(run_dir.root / "data" / SERVER_EVAL)
    asked = [record.question for record in records if record.question is not None][:16]
    assert contributions["figures"]["swapped"] == sum(bool(re.search(r"\b(wo)?man\b", q)) for q in asked) > 8
    assert all(f["counterfactual_standard_error"] > 0 for f in contributions["figures"]["sites"].values())
    # ... and answered the safety probes, each site judged on its own answers, paired with the current global's.
    safety = rows[1]["gates"]["safety"]["figures"]
    assert set(safety["sites"]) == {"site-0", "site-1", "site-2"} and safety["probes"] == 2
    assert all("unsafe_increase" in figures for figures in [safety, *safety["sites"].values()])
    assert rows[0]["gates"]["safety"]["figures"]["pii_increase"] == 0.0  # the base model against itself
    # ... and scored the sixteen made-up identities against their filtered form, as captions of two images.
    leakage = rows[1]["gates"]["leakage"]["figures"]["sites"]
    assert set(leakage) == {"site-0", "site-1", "site-2"} and all(f["standard_error"] > 0 for f in leakage.values())
    assert all(f["preference"] < 0 for f in leakage.values())  # spelled-out names are less likely than placeholders
    assert attacked["attribution"]["gates"]["contributions"]["figures"] == {"scored": 2, "judged": False}
    assert rows[0]["gates"]["contributions"]["figures"] == {"scored": 0}
