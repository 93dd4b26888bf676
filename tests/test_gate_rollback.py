"""A gate that rejects a round: the previous adapter stays global, and the rejection is recorded."""

import pytest
from safetensors.torch import load_file

from contract.run_config import load_config
from evaluation import gates
from server.checkpoint import load_checkpoint
from server.run_dir import RunDir
from tests.pii_checks import injected, leaked
from tests.small_run import SMALL_RUN
from tests.spy import spied_simulate
from vlm.adapters import state_hash

pytestmark = pytest.mark.slow


def test_rejected_round_is_rolled_back_and_recorded(tmp_path, tiny_model_dir, monkeypatch):
    # Gate "round-two", registered here for the config to validate; the spy ServerApp's fails round 2.
    monkeypatch.setitem(gates.GATES, "round-two", (gates.GateSettings, lambda settings: lambda evidence: {}))
    config = load_config(
        None,
        [
            *SMALL_RUN,
            "federation.sites=2",
            "federation.rounds=2",
            "aggregation.strategy='fedadam'",
            "gates.round-two={}",
        ],
    )
    run_dir = RunDir(tmp_path / "run")
    spy = spied_simulate(config, run_dir.root, monkeypatch, reject_round=2)
    rows = run_dir.read_metrics()
    assert [row["status"] for row in rows] == ["accepted", "accepted", "rejected"]
    assert rows[2]["gates"] == {"round-two": {"passed": False}}
    assert rows[2]["candidate_hash"] != rows[1]["adapter_hash"] == rows[2]["adapter_hash"]
    published = load_file(run_dir.adapter / "adapter_model.safetensors")
    checkpoint, kept, _ = load_checkpoint(run_dir.checkpoints)
    assert state_hash(published) == state_hash(kept) == rows[1]["adapter_hash"]
    assert (checkpoint.round, checkpoint.last_accepted_round) == (2, 1)
    assert checkpoint.accepted_evaluation == rows[1]["utility"]
    # Flower messages from the sites: metric and config records and array names carry no injected PII.
    contents = [reply["content"] for reply in spy.replies() if "content" in reply]
    assert len(contents) == 2 * 2 + 2 and "pii|caption|PERSON" in contents[0]
    values = injected(run_dir.data / "site-0", run_dir.data / "site-1")
    assert leaked(values, "\n".join(contents)) == []
