"""A gate that rejects a round: the previous adapter stays global, and the rejection is recorded."""

import pytest
from safetensors.torch import load_file

from contract.run_config import load_config
from evaluation import gates
from server import federation
from server.checkpoint import load_checkpoint
from server.run_dir import RunDir
from simulations.runner import simulate
from tests.pii_checks import injected, leaked
from tests.small_run import SMALL_RUN
from vlm.adapters import state_hash

pytestmark = pytest.mark.slow


def reject_round_two(evidence: gates.RoundEvidence) -> dict:
    return {"passed": evidence.server_round != 2}


def test_rejected_round_is_rolled_back_and_recorded(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(gates.GATES, "round-two", (gates.GateSettings, lambda settings: reject_round_two))
    replies = []
    for name in ("usable_train_reply", "usable_evaluate_reply"):  # record every reply the server receives
        check = getattr(federation, name)
        monkeypatch.setattr(
            federation, name, lambda reply, *rest, check=check: replies.append(reply) or check(reply, *rest)
        )
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
    simulate(config, run_dir.root)
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
    contents = [repr(dict(reply.content.items())) for reply in replies if reply.has_content()]
    assert len(contents) == 2 * 2 + 2 and "pii|caption|PERSON" in contents[0]
    values = injected(run_dir.data / "site-0", run_dir.data / "site-1")
    assert leaked(values, "\n".join(contents)) == []
