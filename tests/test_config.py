from pathlib import Path

import pytest

from contract.run_config import ConfigError, RunConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_hospital_preset_file_states_the_defaults_but_its_training_budget():
    hospital, defaults = load_config(CONFIGS / "hospital.toml"), RunConfig()
    assert (hospital.train.local_steps, defaults.train.local_steps) == (50, 25)
    assert (hospital.train.batch_size, defaults.train.batch_size) == (8, 16)
    assert (hospital.federation.rounds, defaults.federation.rounds) == (10, 15)
    budget = {"local_steps", "batch_size"}
    assert hospital.train.model_dump(exclude=budget) == defaults.train.model_dump(exclude=budget)
    assert hospital.federation.model_dump(exclude={"rounds"}) == defaults.federation.model_dump(exclude={"rounds"})
    assert hospital.model_dump(exclude={"train", "federation"}) == defaults.model_dump(exclude={"train", "federation"})


def test_retail_preset_differs_only_in_scenario():
    retail = load_config(CONFIGS / "retail.toml")
    assert retail.data.scenario == "retail"
    assert retail.model_dump(exclude={"data"}) == RunConfig().model_dump(exclude={"data"})


def test_dp_preset_differs_only_in_dp_lora_scale_and_constant_rate():
    private = load_config(CONFIGS / "hospital_dp.toml")
    assert private.privacy.dp.enabled and private.privacy.dp.target_epsilon == 8.0
    assert (private.lora.r, private.lora.alpha) == (4, 64)
    assert (private.train.learning_rate, private.train.schedule) == (0.002, "constant")
    rate = {"learning_rate", "schedule"}
    assert private.train.model_dump(exclude=rate) == RunConfig().train.model_dump(exclude=rate)
    others = {"privacy", "lora", "train"}
    assert private.model_dump(exclude=others) == RunConfig().model_dump(exclude=others)


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[lora]\nrank = 4\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "lora.rank: unknown key" in str(error.value)


def test_unknown_section_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[training]\nsteps = 4\n")
    with pytest.raises(ConfigError, match="training: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.batch_size=0", "train.batch_size"),
        ("lora.dropout=1.5", "lora.dropout"),
        ("aggregation.strategy='fedfoo'", "aggregation.strategy"),
        ("model.preset='huge'", "model"),
        ("federation.rounds='many'", "federation.rounds"),
    ],
)
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert f"  {key}" in str(error.value)


def test_overrides_parse_toml_values():
    config = load_config(None, ["federation.rounds=3", "lora.target_modules=['q_proj']", "data.root=/x/y"])
    assert config.federation.rounds == 3
    assert config.lora.target_modules == ["q_proj"]
    assert config.data.root == "/x/y"


def test_malformed_override_and_toml_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["federation.rounds"])
    path = tmp_path / "broken.toml"
    path.write_text("[lora\nr = 4")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_min_train_nodes_cannot_exceed_clients():
    with pytest.raises(ConfigError, match="min_train_nodes"):
        load_config(None, ["federation.sites=2", "federation.min_train_nodes=3"])


def test_resolved_config_round_trips_through_toml(tmp_path):
    config = load_config(None, ["federation.rounds=9", "aggregation.strategy='krum'"])
    path = tmp_path / "resolved.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("old", "new"),
    [("simulation.clients=2", "federation.sites"), ("simulation.threads_per_client=2", "simulation.threads_per_site")],
)
def test_renamed_keys_are_refused_naming_the_new_one(old, new):
    with pytest.raises(ConfigError, match=rf"{old.split('=')[0]}: renamed; use {new}"):
        load_config(None, [old])
