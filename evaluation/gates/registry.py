"""The seam between a round's aggregate and its acceptance: gates, built by name from config, judge the evidence.

A gate is registered under a name with its settings class (the `[gates.<name>]` table); a round is accepted
only if every enforcing gate passes. An enforcing gate that raises rejects the round (fail closed); any gate
that raises has its error's type recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from evaluation.items import ItemResults


@dataclass(frozen=True)
class RoundEvidence:
    """Everything a gate may judge: both evaluations, the round's training and privacy figures, its sites."""

    server_round: int
    candidate: dict  # the candidate aggregate's server evaluation
    current: dict  # the current global adapter's
    train: dict  # the round's train summary (loss, examples, counts)
    privacy: dict  # each site's and the central ε
    sites: tuple[str, ...]  # the sites whose updates the candidate holds
    rate_share: float = 1.0  # the round's mean local learning rate over the peak (the schedule's decay)
    candidate_items: ItemResults | None = None  # per-question results of the candidate (memory only)
    current_items: ItemResults | None = None  # and of the current global adapter (None when unknown)
    generations: tuple[str, ...] | None = None  # the candidate's greedy answers to the safety probes, if asked
    current_generations: tuple[str, ...] | None = None  # and the current global adapter's (None when unknown)
    updates: Mapping[str, Mapping[str, torch.Tensor]] | None = None  # per site in the candidate: adapter − global
    site_items: Mapping[str, ItemResults] | None = None  # per site in the candidate: its own adapter's results
    site_generations: Mapping[str, tuple[str, ...]] | None = None  # and its own adapter's probe answers, if asked
    site_preferences: Mapping[str, tuple[float, ...]] | None = None  # and its preference for identities, if asked


@dataclass(frozen=True)
class Verdict:
    """Whether a candidate becomes the new global adapter, and each gate's figures."""

    accepted: bool
    results: dict[str, dict] = field(default_factory=dict)


class Gate(Protocol):
    """Judges one round: a dict of figures holding at least 'passed'."""

    def __call__(self, evidence: RoundEvidence) -> dict: ...


class GateSettings(BaseModel):
    """What every `[gates.<name>]` table may set; a gate's own settings class adds its thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["enforce", "warn"] = "enforce"

    def judges_sites(self) -> bool:
        """Whether the gate judges each site's update on its own (not covered by a central ε)."""
        return False


GateFactory = Callable[[Any], Gate]
GATES: dict[str, tuple[type[GateSettings], GateFactory]] = {}  # name -> (settings class, builder)


def outcome(settings: GateSettings, passed: bool, figures: dict, reason: str = "") -> dict:
    """A gate's record: passed, mode, its figures (counts and rates only) and why it failed."""
    return {"passed": passed, "mode": settings.mode, "figures": figures, "reason": reason}


def register_gate(name: str, settings: type[GateSettings]) -> Callable[[GateFactory], GateFactory]:
    """Register a gate builder under name (a decorator), as Opacus registers accountants."""

    def register(factory: GateFactory) -> GateFactory:
        GATES[name] = (settings, factory)
        return factory

    return register


def validate_gate_settings(tables: Mapping[str, object]) -> dict[str, GateSettings]:
    """Each `[gates.<name>]` table as its gate's settings; an unknown name or a bad value names the key."""
    settings = {}
    for name, table in tables.items():
        if isinstance(table, GateSettings):
            settings[name] = table
            continue
        if name not in GATES:
            known = ", ".join(sorted(GATES)) or "none"
            raise ValueError(f"gates.{name}: unknown gate; known: {known}")
        try:
            settings[name] = GATES[name][0].model_validate(table)
        except ValidationError as error:
            problems = "; ".join(
                f"gates.{name}.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
            )
            raise ValueError(problems) from None
    return settings


def build_gates(settings: Mapping[str, GateSettings]) -> dict[str, tuple[GateSettings, Gate]]:
    """The configured gates, built by name."""
    return {name: (values, GATES[name][1](values)) for name, values in settings.items()}


def judge(gates: Mapping[str, tuple[GateSettings, Gate]], evidence: RoundEvidence) -> Verdict:
    """Run every gate on the evidence; accepted only if every enforcing gate passes (a raising gate fails)."""
    results: dict[str, dict] = {}
    accepted = True
    for name, (settings, gate) in gates.items():
        try:
            result = gate(evidence)
        except Exception as error:  # fail closed: a gate that cannot judge rejects the round
            kind = type(error).__name__
            result = {"passed": False, "mode": settings.mode, "error": kind, "reason": f"gate raised {kind}"}
        results[name] = result
        if settings.mode == "enforce" and not result.get("passed", False):
            accepted = False
    return Verdict(accepted, results)
