import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedMedian, FedProx, FedTrimmedAvg, FedYogi, Krum

from contract.run_config import load_config
from server.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from server.run_dir import RunDir
from server.strategies import build_strategy, load_optimizer_state, optimizer_state, restore, snapshot

KINDS = {
    "fedavg": FedAvg,
    "fedavgm": FedAvgM,
    "fedprox": FedProx,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
    "fedmedian": FedMedian,
    "fedtrimmedavg": FedTrimmedAvg,
    "krum": Krum,
}


@pytest.mark.parametrize("name", KINDS)
def test_config_picks_flowers_strategy(name):
    strategy = build_strategy(load_config(None, [f"aggregation.strategy='{name}'"]))
    assert type(strategy) is KINDS[name]


def _reply(value: float) -> Message:
    content = RecordDict(
        {"arrays": ArrayRecord({"w": torch.full((3,), value)}), "metrics": MetricRecord({"num-examples": 10})}
    )
    return Message(content, dst_node_id=0, message_type="train")


def _aggregate(strategy, server_round: int, current: torch.Tensor, values: list[float]) -> None:
    strategy.current_arrays = {"w": current.numpy()}
    replies = []
    for value in values:
        message = _reply(value)
        replies.append(Message(message.content, reply_to=message))
    strategy.aggregate_train(server_round, replies)


def test_rejected_round_restores_server_optimizer_moments(task_identity):
    strategy = build_strategy(load_config(None, ["aggregation.strategy='fedadam'"]))
    _aggregate(strategy, 1, torch.zeros(3), [1.0, 3.0])
    moments = {k: v.copy() for k, v in optimizer_state(strategy).items()}
    saved = snapshot(strategy)
    _aggregate(strategy, 2, torch.zeros(3), [9.0, 9.0])
    assert not np.allclose(optimizer_state(strategy)["m_t/w"], moments["m_t/w"])
    restore(strategy, saved)
    for key, value in moments.items():
        np.testing.assert_array_equal(optimizer_state(strategy)[key], value)


def test_optimizer_state_survives_a_checkpoint(tmp_path, task_identity):
    strategy = build_strategy(load_config(None, ["aggregation.strategy='fedyogi'"]))
    _aggregate(strategy, 1, torch.zeros(3), [1.0, 2.0])
    adapter = {"lora_A": torch.randn(2, 3), "lora_B": torch.zeros(3, 2)}
    save_checkpoint(tmp_path, Checkpoint(1, 1, {"vqa_accuracy": 0.5}), adapter, optimizer_state(strategy))
    checkpoint, loaded_adapter, moments = load_checkpoint(tmp_path)
    assert checkpoint == Checkpoint(1, 1, {"vqa_accuracy": 0.5})
    torch.testing.assert_close(loaded_adapter["lora_A"], adapter["lora_A"])
    fresh = build_strategy(load_config(None, ["aggregation.strategy='fedyogi'"]))
    load_optimizer_state(fresh, moments)
    for key, value in optimizer_state(strategy).items():
        np.testing.assert_array_equal(optimizer_state(fresh)[key], value)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, Checkpoint(1, 1, {}), {"w": torch.zeros(2)}, {})
    (tmp_path / "round-0001" / "state.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path)


def test_a_crash_mid_save_leaves_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, Checkpoint(1, 1, {}), {"w": torch.ones(2)}, {})
    (tmp_path / "round-0002.partial").mkdir()  # a save that died before its rename
    (tmp_path / "round-0002.partial" / "global_adapter.safetensors").write_bytes(b"half")
    checkpoint, adapter, _ = load_checkpoint(tmp_path)
    assert checkpoint.round == 1 and torch.equal(adapter["w"], torch.ones(2))
    save_checkpoint(tmp_path, Checkpoint(2, 2, {}), {"w": torch.full((2,), 2.0)}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "round-0002"]


def test_metrics_are_truncated_to_the_checkpoint(tmp_path):
    run_dir = RunDir(tmp_path)
    for server_round in range(4):
        run_dir.append_metrics({"round": server_round})
    with run_dir.metrics.open("a") as handle:
        handle.write('{"round": 4, "trunc')
    assert [row["round"] for row in run_dir.read_metrics()] == [0, 1, 2, 3]
    run_dir.truncate_metrics(2)
    assert [row["round"] for row in run_dir.read_metrics()] == [0, 1, 2]


def test_server_momentum_steps_and_survives_rollback_and_a_checkpoint(tmp_path, task_identity):
    config = load_config(None, ["aggregation.strategy='fedavgm'", "aggregation.server_momentum=0.5"])
    strategy = build_strategy(config)
    strategy.current_arrays = ArrayRecord({"w": torch.zeros(3)})

    def aggregate(server_round: int, values: list[float]) -> np.ndarray:
        replies = [Message(_reply(v).content, reply_to=_reply(v)) for v in values]
        return strategy.aggregate_train(server_round, replies)[0]["w"].numpy()

    # round 1: average 2, pseudo-gradient -2, momentum -2, weights 0 + 2 = 2
    np.testing.assert_allclose(aggregate(1, [1.0, 3.0]), np.full(3, 2.0))
    saved = snapshot(strategy)
    # round 2: average 4, pseudo-gradient 2 - 4 = -2, momentum 0.5 * -2 - 2 = -3, weights 2 + 3 = 5
    np.testing.assert_allclose(aggregate(2, [4.0, 4.0]), np.full(3, 5.0))
    np.testing.assert_allclose(optimizer_state(strategy)["momentum_vector/0"], np.full(3, -3.0))
    restore(strategy, saved)
    np.testing.assert_allclose(optimizer_state(strategy)["momentum_vector/0"], np.full(3, -2.0))

    save_checkpoint(tmp_path, Checkpoint(1, 1, {}), {"w": torch.zeros(3)}, optimizer_state(strategy))
    fresh = build_strategy(config)
    load_optimizer_state(fresh, load_checkpoint(tmp_path)[2])
    fresh.current_arrays = ArrayRecord({"w": torch.full((3,), 2.0)})
    strategy = fresh
    np.testing.assert_allclose(aggregate(2, [4.0, 4.0]), np.full(3, 5.0))
