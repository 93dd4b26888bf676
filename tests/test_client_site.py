import pytest

from client.site import model_dir_for, site_data, verify_base_model
from contract.messages import RoundInstruction
from contract.node_config import NodeConfig
from contract.run_config import RunConfig, load_config
from privacy.pii.settings import PiiSettings
from vlm.loading import weights_hash
from vlm.records import load_dataset


def data_path_for(node_config: dict, data_root: str) -> str:
    instruction = RoundInstruction(RunConfig(), "", data_root, "", "")
    return NodeConfig.parse(1, node_config).data_folder(instruction).as_posix()


def model_dir_for_node(config: RunConfig, node_config: dict):
    return model_dir_for(config, NodeConfig.parse(1, node_config))


def test_deployment_data_path_wins_over_the_simulation_index():
    assert data_path_for({"data-path": "/site/data", "partition-id": 3}, "/sim") == "/site/data"
    assert data_path_for({"partition-id": 3}, "/sim") == "/sim/site-3"
    with pytest.raises(ValueError, match="node-config 'data-path'"):
        data_path_for({}, "")


def test_model_dir_prefers_the_node_then_the_config(tmp_path, tiny_model_dir):
    config = load_config(None, [f"model.path='{tmp_path}'"])
    assert model_dir_for_node(config, {"model-path": "/node/model"}).as_posix() == "/node/model"
    assert model_dir_for_node(config, {}) == tmp_path
    assert model_dir_for_node(load_config(None, ["model.preset='tiny-test'"]), {}) == tiny_model_dir


def test_a_different_base_model_is_refused(tiny_model_dir):
    verify_base_model(tiny_model_dir, weights_hash(tiny_model_dir))
    with pytest.raises(ValueError, match="differs from the server's"):
        verify_base_model(tiny_model_dir, "0" * 64)


def test_site_split_is_disjoint_stable_and_counted(hospital_root):
    data = site_data(str(hospital_root / "site-1"), 0.25, PiiSettings())
    train_ids = {r.record_id for r in data.train}
    holdout_ids = {r.record_id for r in data.holdout}
    assert train_ids and holdout_ids and not train_ids & holdout_ids
    assert len(train_ids | holdout_ids) == 24 and set(data.images) == train_ids
    counts = data.counts()
    assert counts["records-kept"] == 24 and counts["records-train"] == len(train_ids)
    site_data.cache_clear()
    again = site_data(str(hospital_root / "site-1"), 0.25, PiiSettings())
    assert {r.record_id for r in again.holdout} == holdout_ids


def test_the_held_out_split_does_not_depend_on_the_filter(hospital_root):
    site = str(hospital_root / "site-0")
    default = site_data(site, 0.25, PiiSettings())
    stricter = site_data(site, 0.25, PiiSettings(score_threshold=0.5))  # another filtered copy, another cache folder
    assert {r.record_id for r in default.holdout} == {r.record_id for r in stricter.holdout}
    raw_ids = {r.record_id for r in load_dataset(hospital_root / "site-0")[0]}
    assert {r.record_id for r in default.train + default.holdout} == raw_ids
