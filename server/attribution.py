"""Which site's update made a round's aggregate fail: the aggregate without the sites a failing gate named (the
per-site gates name their strays), each alone and then together, else leave-one-site-out aggregates, or with many
sites aggregates without groups of them (group testing), each judged by the gates."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from flwr.app import Message
from flwr.serverapp.strategy import Strategy

from contract.messages import reply_site
from contract.run_config import GROUP_TESTING_FROM
from evaluation.gates import Verdict
from server.evaluator import Assessment
from server.strategies import restore, snapshot

# Judges an aggregate holding the named sites' updates.
Judge = Callable[[dict[str, torch.Tensor], tuple[str, ...]], tuple[Assessment, Verdict]]
# Whether the aggregate without the given sites passes (judged once per set).
Passes = Callable[[tuple[str, ...]], bool]


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


def _split(sites: tuple[str, ...], parts: int) -> list[tuple[str, ...]]:
    """sites in `parts` consecutive groups whose sizes differ by at most one."""
    return [sites[len(sites) * part // parts : len(sites) * (part + 1) // parts] for part in range(parts)]


def _passing_start(passes: Passes, sites: tuple[str, ...], min_updates: int) -> tuple[str, ...] | None:
    """A left-out set whose absence passes: keep each half of the sites alone, then each quarter, and so on while
    a group holds min_updates sites; the sites outside every passing group (else outside the first), or None."""
    parts = 2
    while len(sites) // parts >= min_updates:
        clean = [group for group in _split(sites, parts) if passes(tuple(s for s in sites if s not in group))]
        if clean:
            outside = tuple(site for site in sites if not any(site in group for group in clean))
            if len(clean) > 1 and passes(outside):
                return outside
            return tuple(site for site in sites if site not in clean[0])
        parts *= 2
    return None


def _fewest_needed(passes: Passes, left_out: tuple[str, ...], candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The candidates that must be left out beside left_out for the aggregate to pass, given that leaving out all
    of them does: halve the candidates, find those needed in the first half with the whole second half left out,
    then those needed in the second half with only those (adaptive group testing)."""
    if passes(left_out):
        return ()
    if len(candidates) == 1:
        return candidates
    first, second = _split(candidates, 2)
    needed_first = _fewest_needed(passes, left_out + second, first)
    return needed_first + _fewest_needed(passes, left_out + needed_first, second)


def guarded(sites: tuple[str, ...], min_updates: int, judge_once: Callable[[tuple[str, ...]], bool]) -> Passes:
    """Passes over judge_once: each left-out set sorted and judged once; nothing left out (the aggregate that
    failed) or fewer than min_updates left: not judged, and it does not pass."""
    verdicts: dict[tuple[str, ...], bool] = {}

    def passes(left_out: tuple[str, ...]) -> bool:
        left_out = tuple(sorted(left_out))
        if not left_out or len(sites) - len(left_out) < min_updates:
            return False
        if left_out not in verdicts:
            verdicts[left_out] = judge_once(left_out)
        return verdicts[left_out]

    return passes


def search_culprits(passes: Passes, sites: tuple[str, ...], min_updates: int, group_testing_from: int) -> None:
    """Judge the left-out sets that find the culprits: from group_testing_from sites on, by groups (_passing_start,
    then _fewest_needed: for one culprit among n, at most 2 log2 n trials in bench.attribution); with fewer sites,
    or when no group passes (the gates may fail an aggregate of a few honest sites that the culprit's absence alone
    would pass), each site left out in turn."""
    if len(sites) >= group_testing_from and (start := _passing_start(passes, sites, min_updates)) is not None:
        passes(_fewest_needed(passes, (), start))
        return
    for site in sites:
        passes((site,))


def attribute(
    strategy: Strategy,
    server_round: int,
    replies: list[Message],
    min_updates: int,
    judge: Judge,
    named: tuple[str, ...] = (),
    group_testing_from: int = GROUP_TESTING_FROM,
) -> Attribution:
    """Find the sites whose updates made the round fail; the strategy ends as it began.

    First the sites a failing gate named, each alone and then together: the first set whose absence makes the
    aggregate pass is the suspects. Otherwise search_culprits: the suspects are the fewest sites whose absence
    passed; none when no trial passes, when too few updates would be left, or when several sets of that fewest size
    pass: a failure that leaving out any one of several sites cures follows none of them (an aggregate on the edge
    of a limit), so nobody is convicted and the round stays rejected.
    """
    saved = snapshot(strategy)
    sites = tuple(sorted(reply_site(reply) for reply in replies))
    trials: list[Trial] = []

    def judge_once(left_out: tuple[str, ...]) -> bool:
        trial = _trial(strategy, saved, server_round, replies, left_out, judge)
        if trial is None:
            return False
        trials.append(trial)
        return trial.verdict.accepted

    passes = guarded(sites, min_updates, judge_once)
    try:
        named = tuple(sorted(set(named) & set(sites)))
        for left_out in _named_first(named):
            if passes(left_out):
                return Attribution(left_out, tuple(trials))
        if len(sites) - 1 < min_updates:
            reason = f"{len(sites)} updates: leaving one out leaves fewer than {min_updates}"
            return Attribution((), tuple(trials), reason)
        search_culprits(passes, sites, min_updates, group_testing_from)
    finally:
        restore(strategy, saved)
    passing = [trial for trial in trials if trial.verdict.accepted]
    if not passing:
        absent = "single site's" if len(sites) < group_testing_from else "group's nor single site's"
        return Attribution((), tuple(trials), f"no {absent} absence makes the aggregate pass")
    fewest = min(len(trial.left_out) for trial in passing)
    tied = [trial.left_out for trial in passing if len(trial.left_out) == fewest]
    if len(tied) > 1:
        either = " or ".join(",".join(left_out) for left_out in tied)
        return Attribution((), tuple(trials), f"the aggregate passes without {either}: no update singled out")
    return Attribution(tied[0], tuple(trials))
