"""A site's node config (Flower's --node-config of a SuperNode, or the Simulation Engine's partition-id), parsed
once into what the site needs: its name, data, base model, state folder and budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context

from contract.data_layout import site_folder, site_name
from contract.messages import RoundInstruction, node_site_name

PARTITION_ID = "partition-id"  # set by the Simulation Engine
SITE_NAME = "site-name"
DATA_PATH = "data-path"
MODEL_PATH = "model-path"
STATE_PATH = "state-path"  # the site's own folder for its state: privacy ledger, PII-filtered copy and report
DP_BUDGET = "dp-budget-epsilon"  # a site may set a lower budget than the federation's


class NodeConfigError(ValueError):
    """A site's node config lacks what this round needs; names the key."""


@dataclass(frozen=True)
class NodeConfig:
    """What a site's node config says, with the node id as the last resort for its name."""

    node_id: int
    partition_id: int | None = None
    name: str | None = None
    data_path: str | None = None
    model_path: str | None = None
    state_path: str | None = None
    dp_budget_epsilon: float | None = None

    @classmethod
    def from_context(cls, context: Context) -> NodeConfig:
        """Parse the context's node config."""
        return cls.parse(context.node_id, context.node_config)

    @classmethod
    def parse(cls, node_id: int, config: Mapping[str, object]) -> NodeConfig:
        """Parse a node config's keys."""

        def text(key: str) -> str | None:
            return str(config[key]) if key in config else None

        return cls(
            node_id=node_id,
            partition_id=int(str(config[PARTITION_ID])) if PARTITION_ID in config else None,
            name=text(SITE_NAME),
            data_path=text(DATA_PATH),
            model_path=text(MODEL_PATH),
            state_path=text(STATE_PATH),
            dp_budget_epsilon=float(str(config[DP_BUDGET])) if DP_BUDGET in config else None,
        )

    @property
    def site(self) -> str:
        """site-name (deployment), else site-<partition-id> (simulation), else node-<node id>."""
        if self.name is not None:
            return self.name
        if self.partition_id is not None:
            return site_name(self.partition_id)
        return node_site_name(self.node_id)

    @property
    def stable_id(self) -> int:
        """An id that stays the same across runs (partition-id in simulation), for seeding."""
        return self.partition_id if self.partition_id is not None else self.node_id

    def data_folder(self, instruction: RoundInstruction) -> Path:
        """Deployment: data-path. Simulation: the site's folder under the instruction's data root."""
        if self.data_path is not None:
            return Path(self.data_path)
        if self.partition_id is not None and instruction.data_root:
            return site_folder(Path(instruction.data_root), self.partition_id)
        raise NodeConfigError(f"no site data: set node-config '{DATA_PATH}' (deployment)")

    def ledger_folder(self, instruction: RoundInstruction) -> Path:
        """Deployment: state-path. Simulation: this site's folder under the instruction's site-state root."""
        if self.state_path is not None:
            return Path(self.state_path)
        if self.partition_id is not None and instruction.site_state_root:
            return Path(instruction.site_state_root) / self.site
        raise NodeConfigError(f"DP needs a folder for the privacy ledger: set node-config '{STATE_PATH}'")

    def pii_cache_folder(self) -> str | None:
        """Deployment with state-path: state-path/pii keeps the site's PII-filtered copies and reports; else None."""
        return str(Path(self.state_path) / "pii") if self.state_path is not None else None
