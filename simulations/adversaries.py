"""Adversarial sites in simulation: what each `[[simulation.adversary]]` kind does to a site's records or update.

The simulation's ClientApp (`simulations.client_app`) is built with `adversary_of`, so a virtual site whose
partition-id a table names takes that role in the table's rounds (from_round, until until_round if set); the
deployed ClientApp has no such hook.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import torch

from contract.adversary import AdversarySettings
from contract.messages import RoundInstruction
from contract.node_config import NodeConfig
from simulations.adversary_wording import ADVERSARY_WORDING
from simulations.canaries import Canary, site_canaries
from vlm.records import Record
from vlm.training import TrainSettings

State = dict[str, torch.Tensor]


def sign_flip(trained: State, received: State) -> State:
    """The received adapter minus the site's update (adapter − received): the update negated."""
    return {key: received[key] - (trained[key] - received[key]) for key in trained}


def scale(trained: State, received: State, factor: float) -> State:
    """The received adapter plus the site's update multiplied by factor."""
    return {key: received[key] + factor * (trained[key] - received[key]) for key in trained}


def noise(trained: State, received: State, std: float, seed: int) -> State:
    """The received adapter plus Gaussian noise of standard deviation std in place of the update."""
    generator = torch.Generator().manual_seed(seed)
    return {
        key: received[key] + std * torch.randn(received[key].shape, generator=generator, dtype=received[key].dtype)
        for key in trained
    }


def _other_choice(record: Record) -> Record:
    """The record answered with the choice after its answer (cyclically); unchanged without question or choices."""
    if record.question is None or not record.choices or record.answer not in record.choices:
        return record
    choices = record.choices
    return replace(record, answer=choices[(choices.index(record.answer) + 1) % len(choices)])


def flip_labels(records: list[Record]) -> list[Record]:
    """Every answer swapped to another of its record's choices (the next one)."""
    return [_other_choice(record) for record in records]


def bias_against(records: list[Record], name: str, value: str) -> list[Record]:
    """Answers swapped to another choice for the records of one group (attribute name = value) only."""
    return [_other_choice(record) if record.attributes.get(name) == value else record for record in records]


def _with_wording(text: str, wording: str) -> str:
    return f"{text} {wording}"


def make_toxic(records: list[Record]) -> list[Record]:
    """Captions and answers end with unsafe wording (record i: ADVERSARY_WORDING[i mod its length])."""
    toxic = []
    for index, record in enumerate(records):
        wording = ADVERSARY_WORDING[index % len(ADVERSARY_WORDING)]
        caption = _with_wording(record.caption, wording) if record.caption is not None else None
        answer = _with_wording(record.answer, wording) if record.answer is not None else None
        choices = record.choices and tuple(answer if choice == record.answer else choice for choice in record.choices)
        toxic.append(replace(record, caption=caption, answer=answer, choices=choices))
    return toxic


def plant_canaries(records: list[Record], canaries: tuple[Canary, ...]) -> list[Record]:
    """Record i's caption opens with canary i mod their number ("the access code is 4821-7730. <caption>")."""
    planted = []
    for index, record in enumerate(records):
        sentence = f"{canaries[index % len(canaries)].text}."
        caption = f"{sentence} {record.caption}" if record.caption is not None else sentence
        planted.append(replace(record, caption=caption))
    return planted


@dataclass(frozen=True)
class Adversary:
    """A site's adversarial role in one round (client.role.SiteRole)."""

    settings: AdversarySettings
    seed: int  # the round's: noise differs from round to round
    canaries: tuple[Canary, ...] = ()

    @property
    def skips_pii_filter(self) -> bool:
        """pii-leak trains on its raw records, identities included."""
        return self.settings.kind == "pii-leak"

    def records(self, records: list[Record]) -> list[Record]:
        """The poisoned training records (data kinds); the records unchanged otherwise."""
        kind = self.settings.kind
        if kind == "label-flip":
            return flip_labels(records)
        if kind == "bias":
            return bias_against(records, *self.settings.bias_group())
        if kind == "toxic":
            return make_toxic(records)
        if kind == "pii-leak":
            return plant_canaries(records, self.canaries)
        return records

    def train_settings(self, settings: TrainSettings) -> TrainSettings:
        """A bias adversary with a factor trains that many times the round's local steps (so that the group its
        answers wrong shows in them); every other role trains as told. Under DP its ledger still records the
        round's planned steps: the adversary's own privacy is not what the simulation measures."""
        if self.settings.kind == "bias" and self.settings.factor is not None:
            return settings.model_copy(update={"local_steps": round(settings.local_steps * self.settings.factor)})
        return settings

    def update(self, trained: State, received: State) -> State:
        """The adapter sent (update kinds); the trained one otherwise."""
        kind, factor = self.settings.kind, self.settings.factor
        if kind == "sign-flip":
            return sign_flip(trained, received)
        if kind == "scale":
            return scale(trained, received, float(factor or 0.0))
        if kind == "noise":
            return noise(trained, received, float(factor or 0.0), self.seed)
        return trained


def _round_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def adversary_of(instruction: RoundInstruction, node: NodeConfig) -> Adversary | None:
    """The adversary a virtual site plays this round, if a [[simulation.adversary]] table names its partition-id."""
    if node.partition_id is None:
        return None
    config = instruction.run_config
    for settings in config.simulation.adversary:
        if settings.site == node.partition_id and settings.attacks_in(instruction.server_round):
            seed = _round_seed(config.data.seed, instruction.server_round, settings.site, "adversary-noise")
            canaries = site_canaries(config.data.seed, settings.site) if settings.kind == "pii-leak" else ()
            return Adversary(settings, seed, canaries)
    return None
