"""A simulated site's departure from the honest protocol: the hook the simulation runner plugs into the ClientApp.

The deployed ClientApp (`client.app:app`) is built without one, so a deployed site always follows the protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from contract.messages import RoundInstruction
from contract.node_config import NodeConfig
from vlm.records import Record
from vlm.training import TrainSettings


class SiteRole(Protocol):
    """What a site does differently this round: its records, its PII filter, its training, its update."""

    @property
    def skips_pii_filter(self) -> bool:
        """Train on the raw records (the filter still runs, so the reported counts look honest)."""

    def records(self, records: list[Record]) -> list[Record]:
        """The training records it uses instead of its own (same record ids)."""

    def train_settings(self, settings: TrainSettings) -> TrainSettings:
        """The local training it does instead of the round's (more steps, say)."""

    def update(self, trained: dict[str, torch.Tensor], received: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The adapter it replies with, given the one it trained and the global one it received."""


RoleOf = Callable[[RoundInstruction, NodeConfig], SiteRole | None]  # None: the site is honest this round
