"""Which site's update made a round's aggregate fail: leave-one-site-out aggregates, each judged by the gates."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from flwr.app import Message
from flwr.serverapp.strategy import Strategy

from contract.messages import reply_site
from evaluation.gates import Verdict
from server.evaluator import Assessment
from server.strategies import restore, snapshot

# Judges an aggregate holding the named sites' updates.
Judge = Callable[[dict[str, torch.Tensor], tuple[str, ...]], tuple[Assessment, Verdict]]


@dataclass(frozen=True)
class Trial:
    """The aggregate without one site's update, and the gates' verdict on it."""

    left_out: str
    sites: tuple[str, ...]
    state: dict[str, torch.Tensor]
    assessment: Assessment
    verdict: Verdict
    strategy_after: dict  # the strategy's state after this aggregation (kept if the trial is accepted)


@dataclass(frozen=True)
class Attribution:
    """The suspects (the left-out site of the best passing trial), every trial's figures, and that trial."""

    suspects: tuple[str, ...]
    trials: tuple[Trial, ...]
    reason: str = ""

    @property
    def accepted(self) -> Trial | None:
        """The passing trial without the suspects, if any."""
        return next((trial for trial in self.trials if (trial.left_out,) == self.suspects), None)

    def record(self) -> dict:
        """metrics.jsonl's `attribution`: suspects and each trial's counts (never a site's update)."""
        return {
            "suspects": list(self.suspects),
            "reason": self.reason,
            "trials": {
                trial.left_out: {
                    "passed": trial.verdict.accepted,
                    "vqa_accuracy": trial.assessment.summary["vqa_accuracy"],
                    "failed_gates": sorted(name for name, r in trial.verdict.results.items() if not r.get("passed")),
                }
                for trial in self.trials
            },
        }


def _aggregate(strategy: Strategy, server_round: int, replies: list[Message]) -> dict[str, torch.Tensor] | None:
    arrays = strategy.aggregate_train(server_round, replies)[0]
    if arrays is None:
        return None
    return {key: value.to(torch.float32) for key, value in arrays.to_torch_state_dict().items()}


def attribute(
    strategy: Strategy, server_round: int, replies: list[Message], min_updates: int, judge: Judge
) -> Attribution:
    """Judge the aggregate of the round's usable updates without each site in turn; the strategy ends as it began.

    The suspect is the left-out site whose trial passes with the highest accuracy (ties: the first site by name);
    none when no trial passes, or when leaving a site out leaves fewer than min_updates updates.
    """
    if len(replies) - 1 < min_updates:
        return Attribution((), (), f"{len(replies)} updates: leaving one out leaves fewer than {min_updates}")
    saved = snapshot(strategy)
    trials = []
    for reply in sorted(replies, key=reply_site):
        rest = [other for other in replies if other is not reply]
        restore(strategy, copy.deepcopy(saved))
        state = _aggregate(strategy, server_round, rest)
        if state is None:
            continue
        sites = tuple(sorted(reply_site(other) for other in rest))
        assessment, verdict = judge(state, sites)
        trials.append(Trial(reply_site(reply), sites, state, assessment, verdict, snapshot(strategy)))
    restore(strategy, saved)
    passing = [trial for trial in trials if trial.verdict.accepted]
    if not passing:
        return Attribution((), tuple(trials), "no single site's absence makes the aggregate pass")
    best = max(passing, key=lambda trial: trial.assessment.summary["vqa_accuracy"])
    return Attribution((best.left_out,), tuple(trials))
