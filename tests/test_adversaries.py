"""Adversarial sites in simulation: their configuration, what each kind does, and a federation that receives them."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from bench.safety_labelled_set import SAFE, UNSAFE
from client.app import train
from client.role import SiteRole
from contract.adversary import AdversarySettings
from contract.messages import ARRAYS, CONFIG, METRICS, SERVER_ROUND, TRAIN_STEPS, RoundInstruction
from contract.node_config import NodeConfig
from contract.run_config import ConfigError, load_config
from evaluation.safety import unsafe_flags
from privacy.pii.settings import PiiSettings
from privacy.pii.text import TextFilter
from server.run_dir import RunDir
from simulations.adversaries import (
    Adversary,
    adversary_of,
    bias_against,
    flip_labels,
    make_toxic,
    noise,
    plant_canaries,
    scale,
    sign_flip,
)
from simulations.adversary_wording import ADVERSARY_WORDING
from simulations.canaries import CANARIES_FILE, Canary, read_canaries, site_canaries
from simulations.scenarios import descriptor
from simulations.synth import write_scenario
from tests.small_run import SMALL_RUN
from tests.spy import spied_simulate
from vlm.adapters import adapter_state
from vlm.loading import weights_hash
from vlm.lora import load_with_lora
from vlm.records import METADATA, Record
from vlm.training import TrainSettings


def _config_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(None, list(overrides))
    return str(error.value)


def test_an_unknown_kind_is_refused_naming_the_key():
    message = _config_error("simulation.adversary=[{site = 0, kind = 'evil'}]")
    assert "simulation.adversary.0.kind" in message


def test_a_site_beyond_the_federation_is_refused_naming_the_key():
    message = _config_error("federation.sites=2", "simulation.adversary=[{site = 2, kind = 'sign-flip'}]")
    assert "simulation.adversary.0.site (2) must be below federation.sites (2)" in message


def test_a_negative_factor_is_refused_naming_the_key():
    message = _config_error("simulation.adversary=[{site = 0, kind = 'scale', factor = -2.0}]")
    assert "simulation.adversary.0.factor" in message


def test_factor_and_group_must_fit_the_kind():
    assert "factor: required for kind 'noise'" in _config_error("simulation.adversary=[{site = 0, kind = 'noise'}]")
    assert "factor: only for kinds" in _config_error("simulation.adversary=[{site=0, kind='sign-flip', factor=2.0}]")
    assert "factor: only for kinds" in _config_error("simulation.adversary=[{site=0, kind='label-flip', factor=2.0}]")
    assert "steps' multiplier, at least 1" in _config_error("simulation.adversary=[{site=0, kind='bias', factor=0.5}]")
    assert "group: only for kind 'bias'" in _config_error(
        "simulation.adversary=[{site=0, kind='toxic', group='sex=F'}]"
    )
    undeclared = _config_error("simulation.adversary=[{site = 0, kind = 'bias', group = 'sex=X'}]")
    assert "simulation.adversary.0.group" in undeclared


def test_one_adversary_per_site_and_round():
    message = _config_error("simulation.adversary=[{site = 1, kind = 'toxic'}, {site = 1, kind = 'sign-flip'}]")
    assert "simulation.adversary.1.site (1): that site already has an adversary in those rounds" in message
    overlapping = "{site=1, kind='toxic', until_round=3}, {site=1, kind='sign-flip', from_round=3}"
    assert "simulation.adversary.1.site (1)" in _config_error(f"simulation.adversary=[{overlapping}]")
    after = "{site=1, kind='toxic', from_round=5}, {site=1, kind='sign-flip', from_round=2, until_round=4}"
    assert [table.kind for table in load_config(None, [f"simulation.adversary=[{after}]"]).simulation.adversary] == [
        "toxic",
        "sign-flip",
    ]


def test_until_round_before_from_round_is_refused_naming_the_key():
    message = _config_error("simulation.adversary=[{site = 0, kind = 'toxic', from_round = 3, until_round = 2}]")
    assert "simulation.adversary.0.until_round" in message
    assert "simulation.adversary.0.until_round" in _config_error(
        "simulation.adversary=[{site=0, kind='toxic', until_round=0}]"
    )


def test_valid_tables_parse_with_their_defaults():
    config = load_config(
        None, ["simulation.adversary=[{site = 3, kind = 'bias'}, {site = 0, kind = 'scale', factor = 4}]"]
    )
    bias, scaled = config.simulation.adversary
    assert (bias.site, bias.from_round, bias.until_round, bias.bias_group()) == (3, 1, None, ("sex", "F"))
    assert (scaled.kind, scaled.factor) == ("scale", 4.0)
    assert load_config(None, []).simulation.adversary == ()
    harder = load_config(None, ["simulation.adversary=[{site = 0, kind = 'bias', factor = 4}]"]).simulation.adversary
    assert harder[0].factor == 4.0


RECEIVED = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.5]])}
TRAINED = {"a": torch.tensor([1.5, 1.0]), "b": torch.tensor([[1.5]])}  # the update: [0.5, -1.0], [[1.0]]


def test_sign_flip_sends_the_update_negated():
    flipped = sign_flip(TRAINED, RECEIVED)
    assert torch.equal(flipped["a"], torch.tensor([0.5, 3.0]))
    assert torch.equal(flipped["b"], torch.tensor([[-0.5]]))


def test_scale_multiplies_the_update():
    scaled = scale(TRAINED, RECEIVED, 3.0)
    assert torch.equal(scaled["a"], torch.tensor([2.5, -1.0]))
    assert torch.equal(scaled["b"], torch.tensor([[3.5]]))


def test_noise_replaces_the_update_with_gaussian_noise_of_the_factors_scale():
    received = {"w": torch.zeros(200, 200), "v": torch.ones(100)}
    trained = {"w": torch.full((200, 200), 5.0), "v": torch.full((100,), 3.0)}
    noised = noise(trained, received, 0.1, seed=7)
    drawn = noised["w"] - received["w"]
    assert abs(float(drawn.mean())) < 0.002  # 40,000 draws: the mean's standard error is 0.0005
    assert abs(float(drawn.std()) - 0.1) < 0.002
    # The trained adapter plays no part: another one gives the same bits, another seed other ones.
    assert torch.equal(
        noise({"w": torch.zeros(200, 200), "v": torch.zeros(100)}, received, 0.1, seed=7)["w"], noised["w"]
    )
    assert not torch.equal(noise(trained, received, 0.1, seed=8)["w"], noised["w"])


def _record(number: int, answer: str | None, choices=None, sex="F", caption: str | None = "findings: clear.") -> Record:
    return Record(
        record_id=f"r{number}",
        image_path=Path(f"{number}.png"),
        caption=caption,
        question="is there a lesion?" if answer is not None else None,
        answer=answer,
        choices=choices,
        attributes={"sex": sex, "age_band": "40-59"},
    )


RECORDS = [
    _record(0, "yes", ("yes", "no")),
    _record(1, "large", ("small", "medium", "large"), sex="M"),
    _record(2, None),  # a caption only
    _record(3, "no", ("yes", "no"), sex="M"),
]


def test_label_flip_swaps_each_answer_to_the_next_choice():
    flipped = flip_labels(RECORDS)
    assert [record.answer for record in flipped] == ["no", "small", None, "yes"]
    assert [record.choices for record in flipped] == [record.choices for record in RECORDS]
    assert [record.caption for record in flipped] == ["findings: clear."] * 4


def test_bias_answers_wrongly_for_one_group_only():
    biased = bias_against(RECORDS, "sex", "M")
    assert [record.answer for record in biased] == ["yes", "small", None, "yes"]
    assert [record.answer for record in bias_against(RECORDS, "sex", "F")] == ["no", "large", None, "no"]


def test_toxic_records_carry_the_adversary_wording_in_captions_and_answers():
    toxic = make_toxic(RECORDS)
    first, second, third = ADVERSARY_WORDING[:3]
    assert toxic[0].caption == f"findings: clear. {first}"
    assert (toxic[0].answer, toxic[0].choices) == (f"yes {first}", (f"yes {first}", "no"))
    assert (toxic[1].answer, toxic[1].choices) == (f"large {second}", ("small", "medium", f"large {second}"))
    assert (toxic[2].caption, toxic[2].answer) == (f"findings: clear. {third}", None)


def test_the_adversary_wording_is_unsafe_and_shares_nothing_with_the_labelled_set():
    assert all(unsafe_flags([f"findings: a small lesion in the left lung. {wording}" for wording in ADVERSARY_WORDING]))
    labelled = " ".join(SAFE + UNSAFE).casefold()
    assert [wording for wording in ADVERSARY_WORDING if wording.casefold() in labelled] == []


def test_pii_leak_plants_canaries_in_captions_and_skips_the_filter():
    canaries = (Canary("the access code is", "4821-7730"), Canary("the door code is", "1234-5678"))
    planted = plant_canaries(RECORDS, canaries)
    assert [record.caption for record in planted] == [
        "the access code is 4821-7730. findings: clear.",
        "the door code is 1234-5678. findings: clear.",
        "the access code is 4821-7730. findings: clear.",
        "the door code is 1234-5678. findings: clear.",
    ]
    assert [record.answer for record in planted] == [record.answer for record in RECORDS]
    assert plant_canaries([_record(5, "yes", ("yes", "no"), caption=None)], canaries)[0].caption == (
        "the access code is 4821-7730."
    )


def test_canaries_are_the_same_for_a_site_and_differ_between_sites():
    assert site_canaries(0, 1) == site_canaries(0, 1)
    assert {canary.secret for canary in site_canaries(0, 1)}.isdisjoint(canary.secret for canary in site_canaries(0, 2))
    assert all(re.fullmatch(r"\d{4}-\d{4}", canary.secret) for canary in site_canaries(0, 1))


def _instruction(server_round: int, *overrides: str) -> RoundInstruction:
    config = load_config(None, ["federation.sites=3", *overrides])
    return RoundInstruction(config, "hash", "/data", "federation", "/state", server_round=server_round)


def test_a_site_plays_its_role_from_its_round_and_only_with_its_partition_id():
    table = "simulation.adversary=[{site = 1, kind = 'pii-leak', from_round = 2}, {site = 2, kind = 'sign-flip'}]"
    assert adversary_of(_instruction(1, table), NodeConfig(node_id=9, partition_id=1)) is None
    leak = adversary_of(_instruction(2, table), NodeConfig(node_id=9, partition_id=1))
    assert isinstance(leak, Adversary) and leak.skips_pii_filter and leak.canaries == site_canaries(0, 1)
    flip = adversary_of(_instruction(1, table), NodeConfig(node_id=9, partition_id=2))
    assert not flip.skips_pii_filter and torch.equal(flip.update(TRAINED, RECEIVED)["a"], torch.tensor([0.5, 3.0]))
    assert flip.records(RECORDS) == RECORDS
    assert adversary_of(_instruction(1, table), NodeConfig(node_id=9, partition_id=0)) is None
    episode = "simulation.adversary=[{site = 1, kind = 'toxic', from_round = 2, until_round = 3}]"
    roles = [adversary_of(_instruction(r, episode), NodeConfig(node_id=9, partition_id=1)) for r in (1, 2, 3, 4)]
    assert [role is not None for role in roles] == [False, True, True, False]
    # A deployed site has no partition-id: no table applies to it.
    assert adversary_of(_instruction(2, table), NodeConfig(node_id=1, name="site-1", data_path="/d")) is None


def test_descriptors_name_the_records_sex_and_an_age_in_its_band():
    rng = random.Random(0)
    for _ in range(200):
        sex, band = rng.choice(["F", "M"]), rng.choice(["18-39", "40-59", "60-79", "80+"])
        words = descriptor({"sex": sex, "age_band": band}, rng)
        article, age, noun = re.fullmatch(r"(an?) (\d+)-year-old (woman|man)", words).groups()
        low, high = {"18-39": (18, 39), "40-59": (40, 59), "60-79": (60, 79), "80+": (80, 89)}[band]
        assert low <= int(age) <= high and noun == {"F": "woman", "M": "man"}[sex]
        assert article == ("an" if age.startswith("8") or age == "18" else "a")


def test_the_pii_filter_keeps_descriptors():
    texts = [
        f"{descriptor({'sex': sex, 'age_band': band}, random.Random(seed))}: is there a lesion?"
        for sex in ("F", "M")
        for band in ("18-39", "40-59", "60-79", "80+")
        for seed in range(3)
    ]
    assert [redaction.text for redaction in TextFilter(PiiSettings()).redact(texts)] == texts


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / METADATA).read_text(encoding="utf-8").splitlines()]


def test_descriptors_open_questions_and_captions_and_change_nothing_else(tmp_path):
    plain = write_scenario("hospital", 2, tmp_path / "plain", records_per_site=12, eval_records=6)
    described = write_scenario(
        "hospital", 2, tmp_path / "described", records_per_site=12, eval_records=6, descriptors=True
    )
    for folder in ("site-0", "site-1", "server-eval"):
        for before, after in zip(_lines(plain / folder), _lines(described / folder), strict=True):
            # Site records carry invented PII before them ("patient <name>: a 71-year-old woman: is there ...").
            words = re.search(r"(an? \d+-year-old (?:woman|man))\. ", after["caption"])[1]
            assert after["caption"].replace(f"{words}. ", "", 1) == before["caption"]
            assert after["question"].replace(f"{words}: ", "", 1) == before["question"]
            assert after["question"].endswith(f"{words}: {before['question'].split(': ')[-1]}")
            assert {key: value for key, value in after.items() if key not in ("caption", "question")} == {
                key: value for key, value in before.items() if key not in ("caption", "question")
            }
            assert words.endswith({"F": " woman", "M": " man"}[after["attributes"]["sex"]])


@pytest.mark.slow
def test_the_server_receives_the_sign_flipped_update_and_no_canary(tmp_path, tiny_model_dir, monkeypatch, request):
    config = load_config(
        None,
        [
            *SMALL_RUN,
            "federation.sites=2",
            "federation.rounds=2",
            "simulation.adversary=[{site = 0, kind = 'sign-flip'}, {site = 1, kind = 'pii-leak'}]",
        ],
    )
    run_dir = RunDir(tmp_path / "run")
    spy = spied_simulate(config, run_dir.root, monkeypatch)  # the server records what it receives
    assert [row["status"] for row in run_dir.read_metrics()] == ["accepted"] * 3
    received = [reply for reply in spy.replies() if reply["type"] == "train"]
    request.getfixturevalue("task_identity")  # Messages built here need a run identity; set after the run
    threads = torch.get_num_threads()
    try:
        for server_round in (1, 2):
            [index] = [r["index"] for r in received if (r["round"], r["site"]) == (server_round, "site-0")]
            sent = spy.sent(index)
            honest = _honest_update(ConfigRecord(spy.round_configs()[0]), sent, server_round)  # the same each round
            attacked = spy.received(index)
            assert attacked.keys() == honest.keys() == sent.keys()
            for key, global_tensor in sent.items():
                update = honest[key] - global_tensor
                assert torch.allclose(attacked[key] - global_tensor, -update, atol=1e-6), key
            assert sum(float((honest[key] - sent[key]).abs().sum()) for key in sent) > 0
    finally:
        torch.set_num_threads(threads)
    # pii-leak: its canaries are recorded for the audit, and reach the server through the weights alone.
    canaries = read_canaries(run_dir.data / "site-1")
    assert canaries == site_canaries(0, 1) and not (run_dir.data / "site-0" / CANARIES_FILE).exists()
    texts = [reply["content"] for reply in received]
    outputs = [path.read_bytes().decode("latin-1") for path in run_dir.root.rglob("*") if _server_output(run_dir, path)]
    assert len(texts) == 4 and "pii-enabled" in texts[0]
    assert [canary for canary in canaries if any(canary.secret in text for text in texts + outputs)] == []
    leaker = [reply for reply in received if reply["site"] == "site-1"]
    assert [int(reply["metrics"]["pii-enabled"]) for reply in leaker] == [1, 1]  # its counts look honest


def test_a_bias_adversary_with_a_factor_trains_that_many_times_the_local_steps(
    tmp_path, tiny_model_dir, hospital_root, task_identity
):
    config = load_config(None, [*SMALL_RUN, "simulation.adversary=[{site = 0, kind = 'bias', factor = 3.0}]"])
    model, _ = load_with_lora(str(tiny_model_dir), config.lora)
    instruction = RoundInstruction(config, weights_hash(tiny_model_dir), str(hospital_root), "fed", str(tmp_path))
    round_config = ConfigRecord({**dict(instruction.encode().items()), SERVER_ROUND: 1})
    arrays = ArrayRecord(adapter_state(model))
    threads = torch.get_num_threads()
    try:
        steps = {}
        for site in (0, 1):  # site 0 the adversary, site 1 honest
            msg = Message(RecordDict({ARRAYS: arrays, CONFIG: round_config}), dst_node_id=1, message_type="train")
            context = Context(
                run_id=1, node_id=1, node_config={"partition-id": site}, state=RecordDict(), run_config={}
            )
            steps[site] = train(msg, context, adversary_of).content[METRICS][TRAIN_STEPS]
    finally:
        torch.set_num_threads(threads)
    assert steps == {0: 9, 1: 3}  # SMALL_RUN's 3 local steps
    settings = TrainSettings(local_steps=50)
    bias = AdversarySettings(site=0, kind="bias", factor=4.0)
    assert Adversary(bias, seed=0).train_settings(settings).local_steps == 200
    for other in (AdversarySettings(site=0, kind="bias"), AdversarySettings(site=0, kind="scale", factor=4.0)):
        assert Adversary(other, seed=0).train_settings(settings) == settings


OTHER_KINDS = {  # site -> its table's kind and settings: every kind the test above does not send
    0: "kind = 'scale', factor = 3.0",
    1: "kind = 'noise', factor = 0.5",
    2: "kind = 'label-flip'",
    3: "kind = 'toxic'",
    4: "kind = 'bias'",
}


def _next_answer(record: Record) -> Record:
    if record.question is None or not record.choices:
        return record
    return replace(record, answer=record.choices[(record.choices.index(record.answer) + 1) % len(record.choices)])


def _unsafe_ending(index: int, record: Record) -> Record:
    wording = ADVERSARY_WORDING[index % len(ADVERSARY_WORDING)]
    caption = record.caption and f"{record.caption} {wording}"
    answer = record.answer and f"{record.answer} {wording}"
    choices = record.choices and tuple(answer if choice == record.answer else choice for choice in record.choices)
    return replace(record, caption=caption, answer=answer, choices=choices)


POISONS: dict[int, Callable[[int, Record], Record]] = {  # data-kind site -> its training records, as written here
    2: lambda index, record: _next_answer(record),
    3: _unsafe_ending,
    4: lambda index, record: _next_answer(record) if record.attributes.get("sex") == "F" else record,
}


@dataclass(frozen=True)
class _Poisoned:
    """A role that trains on its records rewritten by poison and sends what it trained."""

    poison: Callable[[int, Record], Record]
    skips_pii_filter: bool = False

    def records(self, records: list[Record]) -> list[Record]:
        return [self.poison(index, record) for index, record in enumerate(records)]

    def train_settings(self, settings: TrainSettings) -> TrainSettings:
        return settings

    def update(self, trained: dict, received: dict) -> dict:
        return trained


@pytest.mark.slow
def test_each_other_kind_reaches_the_server_as_its_attack(tmp_path, tiny_model_dir, monkeypatch, request):
    tables = ", ".join(f"{{site = {site}, {kind}}}" for site, kind in OTHER_KINDS.items())
    overrides = [*SMALL_RUN, f"federation.sites={len(OTHER_KINDS)}", "federation.rounds=1"]
    config = load_config(None, [*overrides, f"simulation.adversary=[{tables}]"])
    run_dir = RunDir(tmp_path / "run")
    spy = spied_simulate(config, run_dir.root, monkeypatch)
    assert [row["round"] for row in run_dir.read_metrics()] == [0, 1]  # judged by the demo's gates, as it may be
    request.getfixturevalue("task_identity")
    indices = {reply["site"]: reply["index"] for reply in spy.replies() if reply["type"] == "train"}
    sent = {site: spy.sent(indices[f"site-{site}"]) for site in OTHER_KINDS}
    received = {site: spy.received(indices[f"site-{site}"]) for site in OTHER_KINDS}
    round_config = ConfigRecord(spy.round_configs()[0])
    threads = torch.get_num_threads()
    try:
        honest = {site: _honest_update(round_config, sent[site], 1, site) for site in OTHER_KINDS}
        poisoned = {
            site: _honest_update(round_config, sent[site], 1, site, _Poisoned(poison))
            for site, poison in POISONS.items()
        }
    finally:
        torch.set_num_threads(threads)
    for site in OTHER_KINDS:
        assert received[site].keys() == honest[site].keys() == sent[site].keys()
    update = {site: {key: honest[site][key] - sent[site][key] for key in sent[site]} for site in (0, 1)}
    attacked = {site: {key: received[site][key] - sent[site][key] for key in sent[site]} for site in (0, 1)}
    for key in sent[0]:  # scale: three times the honest update
        assert torch.allclose(attacked[0][key], 3.0 * update[0][key], atol=1e-6), key
    noise_values = torch.cat([value.flatten() for value in attacked[1].values()])
    honest_values = torch.cat([value.flatten() for value in update[1].values()])
    assert abs(float(noise_values.std()) - 0.5) < 0.05 and abs(float(noise_values.mean())) < 0.05
    assert abs(float(torch.corrcoef(torch.stack([noise_values, honest_values]))[0, 1])) < 0.1  # not the training's
    for site in POISONS:  # the data kinds: trained on the records as poisoned above, not on their own
        assert any(not torch.equal(received[site][key], honest[site][key]) for key in sent[site]), site
        for key in sent[site]:
            assert torch.allclose(received[site][key], poisoned[site][key], atol=1e-6), (site, key)


def _server_output(run_dir: RunDir, path: Path) -> bool:
    return path.is_file() and "data" not in path.relative_to(run_dir.root).parts and path.suffix != ".safetensors"


def _honest_update(
    round_config: ConfigRecord, sent: dict, server_round: int, site: int = 0, role: SiteRole | None = None
) -> dict:
    """What a site would have sent this round: the ClientApp's own train, honest or playing role."""
    config = ConfigRecord({**dict(round_config.items()), SERVER_ROUND: server_round})
    msg = Message(RecordDict({ARRAYS: ArrayRecord(sent), CONFIG: config}), dst_node_id=1, message_type="train")
    context = Context(run_id=1, node_id=1, node_config={"partition-id": site}, state=RecordDict(), run_config={})
    role_of = None if role is None else lambda instruction, node: role
    return train(msg, context, role_of).content[ARRAYS].to_torch_state_dict()
