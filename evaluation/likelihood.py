"""How much more likely a model finds an answer than its alternatives to the same prompt."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.special import logsumexp


def likelihood_margin(log_likelihood: float, alternatives: Sequence[float]) -> float:
    """log(p(answer) / mean p(alternative)) from log-likelihoods, without underflow."""
    return log_likelihood - float(logsumexp(alternatives)) + math.log(len(alternatives))
