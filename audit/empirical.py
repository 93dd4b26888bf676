"""Empirical privacy audits of one training run: the ε lower bound of Steinke, Nasr and Jagielski (NeurIPS 2023),
membership AUC, and the exposure of Carlini et al. (USENIX Security 2019).

The one-run audit: each of m canaries is included in training independently with probability 1/2. The auditor
scores every canary (higher = more likely a member), guesses "member" for the k+ highest, "non-member" for the
k- lowest and abstains on the rest: r = k+ + k- guesses, v of them correct. If training is (ε, δ)-DP, v is
stochastically dominated by Binomial(r, e^ε / (1 + e^ε)) up to a δ term (their main theorem), so a v too large
for that at confidence 1 - α rejects ε: the largest rejected ε is a lower bound on the run's true ε.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

EPSILON_MAX = 50.0  # the bisection's upper end: no feasible number of guesses rejects ε = 50
EPSILON_TOLERANCE = 1e-6


def p_value(epsilon: float, delta: float, m: int, r: int, v: int) -> float:
    """P-value of v or more correct out of r guesses on m canaries if training is (ε, δ)-DP.

    With q = 1 / (1 + e^-ε): β₀ = P[Bin(r, q) ≥ v], α = max over i = 1..v of P[v - i ≤ Bin(r, q) < v] / i,
    and p = min(β₀ + α·δ·2m, 1), as in the paper's own p-value code.
    """
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and 0 <= delta <= 1, got epsilon={epsilon}, delta={delta}")
    q = 1 / (1 + math.exp(-epsilon))
    beta = float(binom.sf(v - 1, r, q))
    steps = np.arange(1, v + 1)
    alpha = float(np.max(np.cumsum(binom.pmf(v - steps, r, q)) / steps)) if v else 0.0
    return min(beta + alpha * delta * 2 * m, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, alpha: float = 0.05) -> float:
    """The largest ε (to within 1e-6) that v correct of r guesses rejects at confidence 1 - α; 0.0 when none is."""
    if not 0 < alpha < 1:
        raise ValueError(f"need 0 < alpha < 1, got {alpha}")
    if p_value(0.0, delta, m, r, v) >= alpha:
        return 0.0
    low, high = 0.0, EPSILON_MAX  # p_value(low) < alpha throughout; p grows with ε
    if p_value(high, delta, m, r, v) < alpha:
        return high
    while high - low > EPSILON_TOLERANCE:
        middle = (low + high) / 2
        if p_value(middle, delta, m, r, v) < alpha:
            low = middle
        else:
            high = middle
    return low


def guesses(scores: Sequence[float], included: Sequence[bool], k_plus: int, k_minus: int) -> tuple[int, int]:
    """(r, v): guesses made and how many are right, guessing member for the k_plus highest scores and non-member
    for the k_minus lowest.

    Ties are broken by canary order, which must not depend on inclusion (number canaries before drawing it).
    """
    score_array = np.asarray(scores, dtype=float)
    member = np.asarray(included, dtype=bool)
    if score_array.ndim != 1 or score_array.shape != member.shape:
        raise ValueError("scores and included are two sequences of the same length")
    if np.isnan(score_array).any():
        raise ValueError("a score is NaN")
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > len(score_array):
        raise ValueError(f"need k_plus, k_minus >= 0 and k_plus + k_minus <= {len(score_array)} canaries")
    order = np.argsort(-score_array, kind="stable")
    guessed_in = order[:k_plus]
    guessed_out = order[len(order) - k_minus :]
    correct = int(member[guessed_in].sum()) + int((~member[guessed_out]).sum())
    return k_plus + k_minus, correct


def membership_auc(scores: Sequence[float], included: Sequence[bool]) -> float:
    """Area under the ROC curve of scores (higher = member) for telling included canaries from the rest."""
    member = np.asarray(included, dtype=bool)
    if member.all() or not member.any():
        raise ValueError("membership AUC needs both included and excluded canaries")
    return float(roc_auc_score(member, np.asarray(scores, dtype=float)))


def exposure(canary_score_rank: int, candidates: int) -> float:
    """log2(candidates) - log2(rank): the canary's exposure among candidates, where rank 1 is the most likely."""
    if not 1 <= canary_score_rank <= candidates:
        raise ValueError(f"need 1 <= rank <= candidates, got rank {canary_score_rank} of {candidates}")
    return math.log2(candidates) - math.log2(canary_score_rank)
