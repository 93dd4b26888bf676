"""A site's privacy ledger: every DP-SGD step it has taken in one federation, so ε never resets.

The ledger is written before the round's first step (write-ahead): a crash mid-round over-counts, never under.
It is a JSON file with a SHA-256 checksum; a missing or corrupt ledger where one is expected stops training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from privacy.dp.accounting import Step, epsilon, merged
from storage.durable import replace_file

LEDGER_VERSION = 1


class LedgerError(RuntimeError):
    """The ledger is missing where steps were recorded, corrupt, or behind the server's record: no training."""


@dataclass(frozen=True)
class DpPlan:
    """The DP-SGD parameters a site uses for the whole federation."""

    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float
    delta: float
    accountant: str
    planned_steps: int
    record_pair: str = "question"


@dataclass(frozen=True)
class Ledger:
    """Steps spent at one site in one federation, and the plan they followed."""

    federation: str
    plan: DpPlan
    history: list[Step] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(steps for _, _, steps in self.history)

    def epsilon(self) -> float:
        """ε spent so far, at the plan's δ."""
        return epsilon(self.history, self.plan.delta, self.plan.accountant)

    def after(self, server_round: int, steps: int) -> Ledger:
        """The ledger once this round's steps are spent."""
        step = (self.plan.noise_multiplier, self.plan.sample_rate, steps)
        return replace(self, history=merged(self.history, step), rounds=[*self.rounds, server_round])

    def to_json(self) -> str:
        body = {"version": LEDGER_VERSION, **asdict(self)}
        text = json.dumps(body, sort_keys=True)
        return json.dumps({"ledger": body, "sha256": hashlib.sha256(text.encode()).hexdigest()}, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> Ledger:
        """Parse and verify a ledger; any damage raises LedgerError naming the source."""
        try:
            wrapper = json.loads(text)
            body = wrapper["ledger"]
            if hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() != wrapper["sha256"]:
                raise LedgerError(f"{source}: privacy ledger checksum mismatch (edited or damaged)")
            if body.pop("version") != LEDGER_VERSION:
                raise LedgerError(f"{source}: unknown privacy ledger version")
            return cls(
                federation=str(body["federation"]),
                plan=DpPlan(**body["plan"]),
                history=[(float(s), float(q), int(n)) for s, q, n in body["history"]],
                rounds=[int(r) for r in body["rounds"]],
            )
        except LedgerError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LedgerError(f"{source}: corrupt privacy ledger") from None


class LedgerFile:
    """A site's ledger for one federation, as a file in the site's state folder."""

    def __init__(self, state_dir: Path, federation: str) -> None:
        self.federation = federation
        self.path = Path(state_dir) / f"dp-ledger-{federation}.json"

    def load(self, recorded_steps: int) -> Ledger | None:
        """The ledger, or None for a site that has never trained here; refuses missing, corrupt or stale ones."""
        if not self.path.is_file():
            if recorded_steps > 0:
                raise LedgerError(
                    f"{self.path}: privacy ledger missing, but the server recorded {recorded_steps} DP steps of this "
                    "site; refusing to restart at epsilon 0"
                )
            return None
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise LedgerError(f"{self.path}: unreadable privacy ledger") from None
        ledger = Ledger.from_json(text, str(self.path))
        if ledger.federation != self.federation:
            raise LedgerError(f"{self.path}: privacy ledger of another federation")
        if ledger.steps < recorded_steps:
            raise LedgerError(
                f"{self.path}: privacy ledger holds {ledger.steps} DP steps, the server recorded {recorded_steps}; "
                "refusing to train on a rolled-back ledger"
            )
        return ledger

    def save(self, ledger: Ledger) -> None:
        """Replace the file atomically (write, fsync, rename)."""
        replace_file(self.path, ledger.to_json())
