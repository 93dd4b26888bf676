"""The hook between aggregation and acceptance: gates judge a round's candidate adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Verdict:
    """Whether a candidate becomes the new global adapter, and each gate's figures."""

    accepted: bool
    results: dict[str, dict] = field(default_factory=dict)


class Gate(Protocol):
    """Judges one round's candidate from its evaluation and the current global adapter's."""

    def __call__(self, server_round: int, candidate: dict, current: dict) -> Verdict: ...


def accept_all(server_round: int, candidate: dict, current: dict) -> Verdict:
    """The gate until the gates land: every candidate is accepted."""
    return Verdict(accepted=True)
