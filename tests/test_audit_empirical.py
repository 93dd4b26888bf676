"""The one-run ε lower bound, membership AUC and exposure, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from audit.empirical import epsilon_lower_bound, exposure, guesses, membership_auc, p_value


def _binomial_pmf(k: int, n: int, q: float) -> float:
    return math.comb(n, k) * q**k * (1 - q) ** (n - k)


@pytest.mark.parametrize(("epsilon", "delta", "m"), [(0.0, 0.0, 4), (1.0, 0.0, 10), (1.0, 1e-3, 10), (2.5, 0.01, 50)])
def test_p_value_matches_hand_binomial_sums(epsilon: float, delta: float, m: int) -> None:
    r, v = 4, 3
    q = math.exp(epsilon) / (math.exp(epsilon) + 1)
    beta = _binomial_pmf(3, 4, q) + _binomial_pmf(4, 4, q)
    alpha = max(
        _binomial_pmf(2, 4, q) / 1,
        (_binomial_pmf(2, 4, q) + _binomial_pmf(1, 4, q)) / 2,
        (_binomial_pmf(2, 4, q) + _binomial_pmf(1, 4, q) + _binomial_pmf(0, 4, q)) / 3,
    )
    assert p_value(epsilon, delta, m, r, v) == pytest.approx(min(beta + alpha * delta * 2 * m, 1.0), rel=1e-12)


def test_p_value_at_epsilon_zero_is_a_fair_coin_tail() -> None:
    # Four of four right by fair coin flips: 1/16.
    assert p_value(0.0, 0.0, 4, 4, 4) == pytest.approx(1 / 16)


def test_p_value_is_capped_at_one() -> None:
    assert p_value(1.0, 0.5, 1000, 4, 3) == 1.0


def test_chance_guessing_bounds_nothing() -> None:
    assert epsilon_lower_bound(m=1000, r=1000, v=500, delta=1e-5) == 0.0
    assert epsilon_lower_bound(m=1000, r=1000, v=510, delta=1e-5) == 0.0


def test_bound_grows_with_correct_guesses() -> None:
    bounds = [epsilon_lower_bound(m=2000, r=1000, v=v, delta=1e-5) for v in (600, 700, 800, 900, 1000)]
    assert bounds[0] > 0
    assert all(lower < higher for lower, higher in zip(bounds, bounds[1:]))


def test_all_correct_guesses_give_the_hand_derived_bound() -> None:
    # δ = 0 and v = r: p = q^r, below 0.05 exactly while q < 0.05^(1/r), i.e. ε < ln(q / (1 - q)) at that q.
    r = 1000
    q = 0.05 ** (1 / r)
    expected = math.log(q / (1 - q))  # about 5.81
    assert 5.7 < expected < 5.9
    assert epsilon_lower_bound(m=r, r=r, v=r, delta=0.0) == pytest.approx(expected, abs=1e-5)
    # A δ > 0 only adds to the p-value, so it can only lower the bound.
    assert epsilon_lower_bound(m=r, r=r, v=r, delta=1e-5) < expected


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="v <= r <= m"):
        p_value(1.0, 0.0, m=10, r=4, v=5)
    with pytest.raises(ValueError, match="epsilon"):
        p_value(-1.0, 0.0, m=10, r=4, v=3)


def test_guesses_count_right_members_and_non_members() -> None:
    scores = [5, 4, 3, 2, 1, 0]
    included = [True, False, True, False, False, True]
    # Members guessed: scores 5 (in, right) and 4 (out, wrong); non-members: 1 (out, right) and 0 (in, wrong).
    assert guesses(scores, included, k_plus=2, k_minus=2) == (4, 2)
    assert guesses(scores, included, k_plus=1, k_minus=0) == (1, 1)
    assert guesses(scores, included, k_plus=0, k_minus=3) == (3, 2)
    with pytest.raises(ValueError):
        guesses(scores, included, k_plus=4, k_minus=3)


def test_membership_auc_hand_cases() -> None:
    # Pairs (member, non-member): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1) yes, (0.8, 0.4) yes: 3 of 4.
    assert membership_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert membership_auc([1, 2, 3, 4], [False, False, True, True]) == pytest.approx(1.0)
    assert membership_auc([4, 3, 2, 1], [False, False, True, True]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both"):
        membership_auc([1, 2], [True, True])


def test_exposure_hand_cases() -> None:
    assert exposure(1, 2**10) == pytest.approx(10.0)
    assert exposure(2**10, 2**10) == pytest.approx(0.0)
    assert exposure(4, 64) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        exposure(0, 64)
    with pytest.raises(ValueError):
        exposure(65, 64)
