"""A site's DP bookkeeping per round: its ledger, its budget, and the spend written before any step."""

from __future__ import annotations

from dataclasses import dataclass

from contract.messages import DP_REFUSED, RoundInstruction, dp_metrics
from contract.node_config import NodeConfig
from privacy.dp.ledger import Ledger, LedgerFile
from privacy.dp.planning import site_plan


@dataclass(frozen=True)
class DpRound:
    """The ledger once this round is spent (or as it stands, when refused) and the budget it was held to."""

    ledger: Ledger
    budget: float
    refused: bool

    def metrics(self) -> dict[str, float | int]:
        """The site's privacy figures for the reply (same keys at every site)."""
        plan = self.ledger.plan
        figures = {
            "epsilon": self.ledger.epsilon(),
            "delta": plan.delta,
            "noise_multiplier": plan.noise_multiplier,
            "sample_rate": plan.sample_rate,
            "steps": self.ledger.steps,
            "max_grad_norm": plan.max_grad_norm,
            "budget_epsilon": self.budget,
        }
        return {**dp_metrics(figures), DP_REFUSED: int(self.refused)}


def begin_dp_round(instruction: RoundInstruction, node: NodeConfig, records: int) -> DpRound:
    """Load (or start) the ledger; refuse when this round would pass the budget; else record the spend first."""
    config = instruction.run_config
    dp = config.privacy.dp
    store = LedgerFile(node.ledger_folder(instruction), instruction.federation_id)
    recorded = instruction.dp_recorded_steps.get(node.site, 0)
    ledger = store.load(recorded) or Ledger(
        instruction.federation_id, site_plan(dp, config.train, config.federation.rounds, records)
    )
    budget = min(dp.budget, node.dp_budget_epsilon if node.dp_budget_epsilon is not None else dp.budget)
    spent = ledger.after(instruction.server_round, config.train.local_steps)
    if spent.epsilon() > budget:
        return DpRound(ledger, budget, refused=True)
    store.save(spent)
    return DpRound(spent, budget, refused=False)
