"""Which site's update made a round's aggregate fail: the aggregate without the sites a failing gate named (the
per-site gates name their strays), each alone and then together, else leave-one-site-out aggregates, each judged by
the gates."""

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
    """The aggregate without some sites' updates (one, or those a gate named), and the gates' verdict on it."""

    left_out: tuple[str, ...]
    sites: tuple[str, ...]
    state: dict[str, torch.Tensor]
    assessment: Assessment
    verdict: Verdict
    strategy_after: dict  # the strategy's state after this aggregation (kept if the trial is accepted)


@dataclass(frozen=True)
class Attribution:
    """The suspects (the left-out sites of the accepted trial), every trial's figures, and that trial."""

    suspects: tuple[str, ...]
    trials: tuple[Trial, ...]
    reason: str = ""

    @property
    def accepted(self) -> Trial | None:
        """The passing trial without the suspects, if any."""
        return next((trial for trial in self.trials if trial.left_out == self.suspects), None)

    def record(self) -> dict:
        """metrics.jsonl's `attribution`: suspects and each trial's counts (never a site's update)."""
        return {
            "suspects": list(self.suspects),
            "reason": self.reason,
            "trials": {
                ",".join(trial.left_out): {
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


def _trial(
    strategy: Strategy, saved: dict, server_round: int, replies: list[Message], left_out: tuple[str, ...], judge: Judge
) -> Trial | None:
    """Aggregate and judge the replies of every site but left_out; the strategy is left as the aggregation made it."""
    rest = [reply for reply in replies if reply_site(reply) not in left_out]
    restore(strategy, copy.deepcopy(saved))
    state = _aggregate(strategy, server_round, rest)
    if state is None:
        return None
    sites = tuple(sorted(reply_site(reply) for reply in rest))
    assessment, verdict = judge(state, sites)
    return Trial(left_out, sites, state, assessment, verdict, snapshot(strategy))


def _named_first(named: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The left-out sets to try first: each named site alone, then all of them.

    A per-site gate judges each site against the round's median site, so one stray can move that median far enough
    for an honest site to look like a stray too; without the real stray, the honest site is judged against honest
    peers again and the fewest suspects are convicted."""
    alone = [(site,) for site in named]
    return alone if len(named) < 2 else [*alone, named]


def attribute(
    strategy: Strategy,
    server_round: int,
    replies: list[Message],
    min_updates: int,
    judge: Judge,
    named: tuple[str, ...] = (),
) -> Attribution:
    """Find the sites whose updates made the round fail; the strategy ends as it began.

    First the sites a failing gate named, each alone and then together: the first set whose absence makes the
    aggregate pass is the suspects. Otherwise leave each site out in turn: the suspect is the left-out site whose
    trial passes with the highest accuracy (ties: the first site by name); none when no trial passes, or when too
    few updates would be left.
    """
    saved = snapshot(strategy)
    trials: list[Trial] = []
    try:
        named = tuple(sorted(set(named) & {reply_site(reply) for reply in replies}))
        for left_out in _named_first(named):
            if len(replies) - len(left_out) < min_updates:
                continue
            trial = _trial(strategy, saved, server_round, replies, left_out, judge)
            trials.extend([trial] if trial is not None else [])
            if trial is not None and trial.verdict.accepted:
                return Attribution(left_out, tuple(trials))
        if len(replies) - 1 < min_updates:
            reason = f"{len(replies)} updates: leaving one out leaves fewer than {min_updates}"
            return Attribution((), tuple(trials), reason)
        judged = {trial.left_out for trial in trials}
        for site in sorted(reply_site(reply) for reply in replies):
            if (site,) not in judged:  # a named site's trial is already judged
                trial = _trial(strategy, saved, server_round, replies, (site,), judge)
                trials.extend([trial] if trial is not None else [])
    finally:
        restore(strategy, saved)
    passing = [trial for trial in trials if trial.verdict.accepted]
    if not passing:
        return Attribution((), tuple(trials), "no single site's absence makes the aggregate pass")
    best = max(passing, key=lambda trial: trial.assessment.summary["vqa_accuracy"])
    return Attribution(best.left_out, tuple(trials))
