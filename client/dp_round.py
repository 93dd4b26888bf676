"""A site's DP bookkeeping per round: its ledger, its budget, and the spend written before any step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fedvlm.config import RunConfig
from privacy.dp.ledger import Ledger, LedgerError, LedgerFile
from privacy.dp.planning import site_plan

STATE_PATH_KEY = "state-path"  # node config: the site's own folder for its privacy ledger (deployment)
BUDGET_KEY = "dp-budget-epsilon"  # node config: a site may set a lower budget than the federation's


@dataclass(frozen=True)
class DpRound:
    """The ledger once this round is spent (or as it stands, when refused) and the budget it was held to."""

    ledger: Ledger
    budget: float
    refused: bool

    def metrics(self) -> dict[str, float | int]:
        """The site's privacy figures for the reply (same keys at every site)."""
        plan = self.ledger.plan
        return {
            "dp-epsilon": self.ledger.epsilon(),
            "dp-delta": plan.delta,
            "dp-noise-multiplier": plan.noise_multiplier,
            "dp-sample-rate": plan.sample_rate,
            "dp-steps": self.ledger.steps,
            "dp-max-grad-norm": plan.max_grad_norm,
            "dp-budget-epsilon": self.budget,
            "dp-refused": int(self.refused),
        }


def site_name(node_config: dict, node_id: int) -> str:
    """node-config site-name (deployment), else site-<partition-id> (simulation), else the node id."""
    if "site-name" in node_config:
        return str(node_config["site-name"])
    if "partition-id" in node_config:
        return f"site-{int(node_config['partition-id'])}"
    return f"node-{node_id}"


def ledger_dir(node_config: dict, settings: dict, site: str) -> Path:
    """node-config state-path (deployment), else the simulation's site-state folder for this site."""
    if STATE_PATH_KEY in node_config:
        return Path(str(node_config[STATE_PATH_KEY]))
    if "partition-id" in node_config and settings.get("site-state-root"):
        return Path(str(settings["site-state-root"])) / site
    raise LedgerError(f"DP needs a folder for the privacy ledger: set node-config '{STATE_PATH_KEY}'")


def begin_dp_round(
    config: RunConfig, settings: dict, node_config: dict, site: str, server_round: int, records: int
) -> DpRound:
    """Load (or start) the ledger; refuse when this round would pass the budget; else record the spend first."""
    dp = config.privacy.dp
    store = LedgerFile(ledger_dir(node_config, settings, site), str(settings["federation-id"]))
    recorded = json.loads(str(settings.get("dp-recorded-steps", "{}"))).get(site, 0)
    ledger = store.load(recorded) or Ledger(
        str(settings["federation-id"]), site_plan(dp, config.train, config.federation.rounds, records)
    )
    budget = min(dp.budget, float(node_config.get(BUDGET_KEY, dp.budget)))
    spent = ledger.after(server_round, config.train.local_steps)
    if spent.epsilon() > budget:
        return DpRound(ledger, budget, refused=True)
    store.save(spent)
    return DpRound(spent, budget, refused=False)
