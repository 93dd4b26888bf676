"""A gate that rejects a round: the previous adapter stays global, and the rejection is recorded."""

import json

import pytest
from safetensors.torch import load_file

from fedvlm.config import load_config
from server.gates import Verdict
from server.run_dir import RunDir
from simulations.runner import simulate
from vlm.adapters import state_hash

pytestmark = pytest.mark.slow


def reject_round_two(server_round: int, candidate: dict, current: dict) -> Verdict:
    return Verdict(accepted=server_round != 2, results={"round-two": {"passed": server_round != 2}})


def test_rejected_round_is_rolled_back_and_recorded(tmp_path, tiny_model_dir):
    config = load_config(
        None,
        [
            "model.preset='tiny-test'",
            "data.records_per_site=24",
            "data.eval_records=16",
            "train.local_steps=3",
            "train.batch_size=4",
            "simulation.clients=2",
            "federation.rounds=3",
            "aggregation.strategy='fedadam'",
        ],
    )
    run_dir = RunDir(tmp_path / "run")
    simulate(config, run_dir.root, gate=reject_round_two)
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted", "accepted", "rejected", "accepted"]
    assert rows[2]["gates"] == {"round-two": {"passed": False}} and "adapter_hash" not in rows[2]
    assert rows[2]["candidate_hash"] != rows[1]["adapter_hash"]
    assert rows[3]["adapter_hash"] == state_hash(load_file(run_dir.adapter / "adapter_model.safetensors"))
    state = json.loads((run_dir.checkpoints / "state.json").read_text())
    assert (state["round"], state["last_accepted_round"]) == (3, 3)
