"""Sites found to have caused a rejected round: kept out of sampling for some rounds, then on probation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flwr.app import Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from contract.messages import reply_site


@dataclass
class Quarantine:
    """Which sites are kept out until which round, and on probation until which round (a repeat doubles it)."""

    rounds: int
    until: dict[str, int] = field(default_factory=dict)  # site -> last round it is kept out of
    probation: dict[str, int] = field(default_factory=dict)  # site -> last round of its probation
    nodes: dict[str, int] = field(default_factory=dict)  # site -> node id, as its replies said

    @classmethod
    def from_record(cls, rounds: int, record: dict | None) -> Quarantine:
        """The state a metrics row's `quarantined` recorded (resume); node ids are learned again from replies."""
        record = record or {}
        return cls(rounds, dict(record.get("until", {})), dict(record.get("probation", {})))

    def learn(self, replies: list[Message]) -> None:
        """Remember each replying site's node id, so that a quarantined site is not sampled."""
        for reply in replies:
            self.nodes[reply_site(reply)] = reply.metadata.src_node_id

    def kept_out(self, server_round: int) -> set[str]:
        """Sites out of this round."""
        return {site for site, last in self.until.items() if server_round <= last}

    def hidden_nodes(self, server_round: int) -> set[int]:
        """Node ids of the sites out of this round whose node id is known."""
        return {self.nodes[site] for site in self.kept_out(server_round) if site in self.nodes}

    def shortfall(self, server_round: int, node_ids: list[int], required: int) -> str | None:
        """Why this round cannot run with its quarantined sites kept out (too few nodes left), or None."""
        if not self.kept_out(server_round):
            return None
        left = len(set(node_ids) - self.hidden_nodes(server_round))
        if left >= required:
            return None
        return f"{left} sites left after quarantine, {required} required"

    def add(self, sites: tuple[str, ...], server_round: int) -> None:
        """Keep sites out of the next `rounds` rounds (twice as many for a site on probation), then probation."""
        for site in sites:
            length = self.rounds * (2 if self.probation.get(site, 0) >= server_round else 1)
            self.until[site] = server_round + length
            self.probation[site] = server_round + length + self.rounds

    def record(self, server_round: int, added: tuple[str, ...] = (), ignored: int = 0) -> dict:
        """metrics.jsonl's `quarantined`: who was out of this round, who was added, and the state to resume."""
        return {
            "sites": sorted(self.kept_out(server_round)),
            "added": sorted(added),
            "ignored_replies": ignored,
            "on_probation": sorted(s for s, last in self.probation.items() if last >= server_round > self.until[s]),
            "until": {site: last for site, last in sorted(self.until.items()) if last >= server_round},
            "probation": {site: last for site, last in sorted(self.probation.items()) if last >= server_round},
        }


class SamplingView:
    """The grid as a strategy samples it: the hidden nodes left out; everything else is the grid's."""

    def __init__(self, grid: Grid, hidden: set[int]) -> None:
        self._grid, self._hidden = grid, hidden

    def get_node_ids(self) -> list[int]:
        """The grid's node ids without the hidden ones."""
        return [node for node in self._grid.get_node_ids() if node not in self._hidden]

    def __getattr__(self, name: str) -> object:
        return getattr(self._grid, name)


@contextmanager
def sampling_without(strategy: Strategy, grid: Grid, hidden: set[int]) -> Iterator[Grid]:
    """The grid for configure_train with hidden nodes left out; the strategy waits for as many fewer nodes."""
    if not hidden:
        yield grid
        return
    original = strategy.min_available_nodes
    strategy.min_available_nodes = max(original - len(hidden), strategy.min_train_nodes)
    try:
        yield SamplingView(grid, hidden)  # type: ignore[misc]
    finally:
        strategy.min_available_nodes = original
