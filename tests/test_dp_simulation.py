"""DP end to end on the Flower Simulation Engine: ε per site round by round, budgets, resume, central DP."""

from __future__ import annotations

import json
from pathlib import Path

import dp_accounting
import pytest
from dp_accounting import rdp
from safetensors.torch import load_file

from simulations.synth import write_scenario
from tests.test_simulation import (
    SMALL,
    _committed_round,
    _fedvlm,
    _killed_after_a_round,
    _rows,
    _run,
    _sets,
    _simulate,
)

pytestmark = pytest.mark.slow

LOCAL_DP = _sets("privacy.dp.enabled=true", "federation.min_train_nodes=1")


def _sites(row: dict) -> dict:
    return row["privacy"]["sites"]


def test_epsilon_rises_each_round_and_a_site_out_of_budget_refuses(tmp_path, tiny_model_dir):
    root = write_scenario("hospital", 2, tmp_path / "data", records_per_site=24, eval_records=16)
    metadata = root / "site-1" / "metadata.jsonl"
    metadata.write_text("".join(metadata.read_text().splitlines(keepends=True)[:10]))  # a small site: larger q
    out = tmp_path / "run"
    settings = _sets(f"data.root='{root}'", "privacy.dp.noise_multiplier=1.0", "privacy.dp.budget_epsilon=8.0")
    _simulate(out, "--sites", "2", "--rounds", "3", *LOCAL_DP, *settings)
    rows = _rows(out)
    assert rows[0]["privacy"] == {"sites": {}, "central": None}
    big = [_sites(row)["site-0"] for row in rows[1:]]
    assert [figures["steps"] for figures in big] == [3, 6, 9]
    assert big[0]["epsilon"] < big[1]["epsilon"] < big[2]["epsilon"] <= 8.0
    assert {figures["status"] for figures in big} == {"trained"}
    assert big[0]["noise_multiplier"] == 1.0 and big[0]["accountant"] == "rdp" and big[0]["delta"] == 1e-5
    small = [_sites(row)["site-1"] for row in rows[1:]]
    assert small[0]["status"] == "trained" and small[0]["sample_rate"] > big[0]["sample_rate"]
    assert [figures["status"] for figures in small[1:]] == ["budget-exhausted", "budget-exhausted"]
    assert small[1]["epsilon"] == small[0]["epsilon"] <= 8.0 and small[2]["steps"] == 3
    for row in rows[2:]:  # the others carry on
        assert (row["status"], row["participants"], row["refused"], row["failures"]) == ("accepted", 1, 1, 0)
    ledgers = sorted(p.relative_to(out).parts[1] for p in (out / "site-state").glob("*/dp-ledger-*.json"))
    assert ledgers == ["site-0", "site-1"]


def _ledger(out: Path, site: str) -> dict | None:
    path = next((out / "site-state" / site).glob("dp-ledger-*.json"), None)
    return json.loads(path.read_text())["ledger"] if path else None


def _spent_uncommitted(out: Path) -> bool:
    """site-0 has written the spend of a round the server has not committed."""
    ledger = _ledger(out, "site-0")
    return ledger is not None and max(ledger["rounds"]) > _committed_round(out)


@pytest.mark.parametrize("kill_mid_round", [False, True], ids=["after-a-round", "after-a-spend-before-its-commit"])
def test_a_killed_dp_run_resumes_without_resetting_epsilon_and_a_lost_ledger_stops_its_site(
    tmp_path, tiny_model_dir, kill_mid_round
):
    out = tmp_path / "run"
    settings = _sets("privacy.dp.target_epsilon=8", "train.local_steps=12")
    command = _fedvlm("simulate", "--out", str(out), *SMALL, "--sites", "2", "--rounds", "4", *LOCAL_DP, *settings)
    done_before = _killed_after_a_round(command, out, 4, until=lambda: not kill_mid_round or _spent_uncommitted(out))
    spent_before = _sites(_rows(out)[done_before])["site-0"]
    for lost in (out / "site-state" / "site-1").glob("dp-ledger-*.json"):
        lost.unlink()

    _run("simulate", "--out", str(out), "--resume")
    rows = _rows(out)
    assert [row["round"] for row in rows] == [0, 1, 2, 3, 4]
    resumed = [_sites(row)["site-0"] for row in rows[done_before + 1 :]]
    # A kill after site-0 wrote a round's spend but before the server committed that round leaves the spend in
    # its ledger: that round is trained again on top of it, and the noise planned for 4 rounds runs out early.
    ledger = _ledger(out, "site-0")
    spent_twice = len(ledger["rounds"]) - len(set(ledger["rounds"]))
    assert spent_twice == 1 or not kill_mid_round
    assert resumed[0]["steps"] == spent_before["steps"] + 12 * (1 + spent_twice)
    assert resumed[0]["epsilon"] > spent_before["epsilon"]
    for before, after in zip(resumed, resumed[1:]):
        if after["status"] == "trained":
            assert after["steps"] == before["steps"] + 12 and after["epsilon"] > before["epsilon"]
        else:  # out of budget: nothing more is spent
            assert after["status"] == "budget-exhausted" and after == {**before, "status": after["status"]}
    assert resumed[-1]["steps"] == 12 * len(ledger["rounds"]) and resumed[-1]["epsilon"] <= 8.0
    assert [figures["status"] for figures in resumed].count("budget-exhausted") == spent_twice
    for row, figures in zip(rows[done_before + 1 :], resumed):  # site-1 refuses to restart at ε = 0
        assert "site-1" not in _sites(row) and row["failures"] == 1
        assert row["participants"] == (figures["status"] == "trained")


def _central_epsilon(noise_multiplier: float, releases: int, delta: float) -> float:
    engine = rdp.RdpAccountant()
    engine.compose(dp_accounting.GaussianDpEvent(noise_multiplier), releases)
    return engine.get_epsilon(delta)


@pytest.mark.parametrize("clipping", ["server", "client"])
def test_central_dp_records_epsilon_after_every_release(tmp_path, tiny_model_dir, clipping):
    out = tmp_path / "run"
    central = _sets(
        "privacy.central.enabled=true",
        f"privacy.central.clipping='{clipping}'",
        "privacy.central.noise_multiplier=2.0",
        "privacy.central.clipping_norm=0.05",
    )
    _simulate(out, "--sites", "2", "--rounds", "2", *central)
    rows = _rows(out)
    assert (rows[0]["privacy"]["central"]["releases"], rows[0]["privacy"]["central"]["epsilon"]) == (0, 0.0)
    for server_round in (1, 2):
        central = rows[server_round]["privacy"]["central"]
        assert rows[server_round]["status"] == "accepted"
        assert (central["releases"], central["clipping"], central["noise_multiplier"]) == (server_round, clipping, 2.0)
        assert central["epsilon"] == pytest.approx(_central_epsilon(2.0, server_round, 1e-5), rel=0.02)
    assert rows[1]["privacy"]["central"]["epsilon"] < rows[2]["privacy"]["central"]["epsilon"]
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[1])["privacy"]["sites"] == {}


def test_dp_and_ffa_lora_run_together(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    settings = _sets("privacy.dp.target_epsilon=4", "lora.ffa=true", "privacy.dp.accountant='prv'")
    _simulate(out, "--sites", "2", "--rounds", "2", *LOCAL_DP, *settings)
    rows = _rows(out)
    assert [row["status"] for row in rows[1:]] == ["accepted", "accepted"]
    assert all(_sites(rows[2])[site]["epsilon"] <= 4.0 for site in ("site-0", "site-1"))
    saved = load_file(out / "adapter" / "adapter_model.safetensors")  # PEFT format: A and B
    b_bytes = sum(t.numel() * 4 for key, t in saved.items() if ".lora_B." in key)
    assert any(".lora_A." in key for key in saved) and b_bytes > 0
    assert rows[1]["bytes"] == {"down": 2 * b_bytes, "up": 2 * b_bytes}  # only B travels
