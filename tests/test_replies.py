import math

import torch
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

from contract.messages import RoundInstruction, group_metrics, groups_from_metrics
from contract.run_config import load_config
from server.replies import site_evaluation, train_summary, usable_train_reply

GLOBAL = {"a": torch.zeros(2, 3), "b": torch.zeros(3)}
METRICS = {"num-examples": 10, "train-loss": 1.5, "site-seconds": 2.0, "records-kept": 12}


def _reply(arrays: dict, metrics: dict) -> Message:
    sent = Message(RecordDict({"config": MetricRecord({"x": 1})}), dst_node_id=0, message_type="train")
    content = RecordDict({"arrays": ArrayRecord(arrays), "metrics": MetricRecord(metrics)})
    return Message(content, reply_to=sent)


def test_only_well_formed_updates_are_aggregated(task_identity):
    good = {"a": torch.ones(2, 3), "b": torch.ones(3)}
    assert usable_train_reply(_reply(good, METRICS), GLOBAL)
    assert not usable_train_reply(_reply({"a": torch.ones(2, 3)}, METRICS), GLOBAL)
    assert not usable_train_reply(_reply({**good, "b": torch.ones(4)}, METRICS), GLOBAL)
    assert not usable_train_reply(_reply({**good, "b": torch.tensor([1.0, math.nan, 0.0])}, METRICS), GLOBAL)
    assert not usable_train_reply(_reply(good, {**METRICS, "num-examples": 0}), GLOBAL)
    assert not usable_train_reply(_reply(good, {**METRICS, "train-loss": math.inf}), GLOBAL)


def test_train_summary_weights_losses_by_examples(task_identity):
    replies = [_reply(GLOBAL, METRICS), _reply(GLOBAL, {**METRICS, "num-examples": 30, "train-loss": 0.5})]
    summary = train_summary(replies)
    assert summary["loss"] == (10 * 1.5 + 30 * 0.5) / 40
    assert summary["examples"] == 40 and summary["counts"] == {"records-kept": 24}


def test_group_keys_survive_dots_pipes_and_spaces():
    groups = {"age.band": {"60.5|x": {"correct": 1, "total": 2}}, "sex": {"F M": {"correct": 0, "total": 1}}}
    assert groups_from_metrics({**group_metrics(groups), "vqa-total": 3}) == groups


def test_site_evaluation_sums_counts_and_groups(task_identity):
    def evaluation(correct: int, total: int, group: str) -> Message:
        counts = {"sex": {group: {"correct": correct, "total": total}}}
        metrics = {"num-examples": total, "vqa-correct": correct, "vqa-total": total, **group_metrics(counts)}
        return _reply({}, metrics)

    result = site_evaluation([evaluation(3, 4, "F"), evaluation(1, 4, "F"), evaluation(2, 2, "M")])
    assert (result["sites"], result["correct"], result["total"]) == (3, 6, 10)
    assert result["groups"] == {"sex": {"F": {"correct": 4, "total": 8}, "M": {"correct": 2, "total": 2}}}


def test_the_round_instruction_carries_no_server_only_section(tmp_path):
    config = load_config(None, [f"audit.signing_key='{tmp_path / 'server-key.pem'}'"])
    instruction = RoundInstruction(config, "0" * 64, "/data", "federation", "/state", {"site-0": 25}, server_round=3)
    record = instruction.encode()
    assert "server-key.pem" not in str(dict(record))
    decoded = RoundInstruction.decode(record)
    assert decoded.run_config.audit.signing_key == "" and decoded.run_config.train == config.train
    assert (decoded.data_root, decoded.federation_id, decoded.dp_recorded_steps) == (
        "/data",
        "federation",
        {"site-0": 25},
    )
