"""Sampling noise of accuracy figures on a finite eval set: standard errors and one-sided bounds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def z_score(confidence: float) -> float:
    """The one-sided normal quantile: a figure is 'clearly over' a threshold when figure − z·SE exceeds it."""
    return NormalDist().inv_cdf(confidence)


@dataclass(frozen=True)
class PairedChange:
    """Current minus candidate accuracy on the same questions, with the standard error of that mean."""

    worse: int  # questions the current adapter answered right and the candidate wrong
    better: int  # the other way round
    total: int
    regression: float
    standard_error: float


def paired_change(current: Sequence[bool], candidate: Sequence[bool]) -> PairedChange:
    """The paired regression (mean of current − candidate per question) and its standard error.

    Each question's difference is 1, −1 or 0; their sample variance is (worse + better − n·mean²) / (n − 1).
    """
    if len(current) != len(candidate):
        raise ValueError(f"{len(current)} current results for {len(candidate)} candidate results")
    total = len(current)
    worse = sum(bool(c) and not bool(d) for c, d in zip(current, candidate))
    better = sum(bool(d) and not bool(c) for c, d in zip(current, candidate))
    mean = (worse - better) / total if total else 0.0
    variance = (worse + better - total * mean**2) / (total - 1) if total > 1 else 0.0
    error = math.sqrt(max(variance, 0.0) / total) if total else 0.0
    return PairedChange(worse, better, total, mean, error)


def proportion_error(rate: float, count: int) -> float:
    """Standard error of a proportion observed as rate over count items (0 without items)."""
    return math.sqrt(rate * (1 - rate) / count) if count else 0.0


def proportion_gap_error(first: tuple[float, int], second: tuple[float, int]) -> float:
    """Standard error of the difference of two independent proportions, each (rate, count)."""
    return math.hypot(*(proportion_error(rate, count) for rate, count in (first, second)))
