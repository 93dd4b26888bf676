"""bench.gate_seeds: the seeds parsed, and per-seed and pooled figures from hand-made round counts."""

from __future__ import annotations

import pytest

from bench.gate_rounds import Clean, Episode, RoundCounts
from bench.gate_seeds import planned_runs, pooled, seed_figures, seed_list, within_goal


def _result(final: float, clean_rounds: list[int], rejected: list[int], episode: Episode | None = None) -> dict:
    counts = RoundCounts([episode] if episode else [], Clean(clean_rounds, rejected))
    return {"final": final, "counts": counts}


def _flip(held: list[int], taken: list[int], quarantined: list[int]) -> Episode:
    return Episode("label-flip", "site-1", 1, 2, held, taken, quarantined)


def test_seed_list_reads_ranges_and_lists():
    assert seed_list("0-3") == [0, 1, 2, 3]
    assert seed_list("7,2,2") == [2, 7]
    assert seed_list("0-1,5,9-10") == [0, 1, 5, 9, 10]
    with pytest.raises(ValueError):
        seed_list("a-b")


def test_each_seed_runs_clean_and_each_kinds_first_episode_alone():
    plan = planned_runs([3], ["label-flip"], 12)
    assert plan[3, "clean"] == []
    assert plan[3, "label-flip"] == ["{site = 1, kind = 'label-flip', from_round = 1, until_round = 2}"]


def test_goal_allows_one_false_rejection_in_twenty_clean_rounds():
    assert within_goal(1, 20) and within_goal(2, 40) and within_goal(0, 3)
    assert not within_goal(1, 19) and not within_goal(2, 33)


def test_figures_per_seed_and_pooled_over_seeds():
    seed_0 = seed_figures(
        {
            "clean": _result(0.80, list(range(1, 13)), [3]),
            # round 1 taken, round 2 caught and the site quarantined; rounds 3-12 clean, none rejected
            "label-flip": _result(0.76, list(range(3, 13)), [], _flip([1, 2], [1], [2])),
        }
    )
    seed_1 = seed_figures(
        {
            "clean": _result(0.90, list(range(1, 13)), [4, 9]),
            "label-flip": _result(0.90, list(range(3, 13)), [5], _flip([1, 2], [1, 2], [])),
        }
    )
    assert (seed_0["clean_rounds"], seed_0["false_rejections"]) == (22, 1)
    assert seed_0["kinds"]["label-flip"] == {
        "held": 2,
        "caught": 1,
        "quarantined": [2],
        "final_over_clean": pytest.approx(0.95),
    }
    assert seed_1["false_rejection_rounds"] == {"clean": [4, 9], "label-flip": [5]}
    figures = pooled({0: seed_0, 1: seed_1}, ["label-flip"])
    assert (figures["clean_rounds"], figures["false_rejections"]) == (44, 4)
    assert figures["seeds_over_goal"] == [1]  # 3 in 22; seed 0's 1 in 22 is within
    flip = figures["kinds"]["label-flip"]
    assert (flip["held"], flip["caught"], flip["quarantined_seeds"]) == (4, 1, 1)
    # ratios 0.95 and 1.00: mean 0.975, sd sqrt(2 * 0.025^2 / 1) = 0.035355
    assert flip["final_over_clean_mean"] == pytest.approx(0.975)
    assert flip["final_over_clean_sd"] == pytest.approx(0.0353553, abs=1e-6)
    assert flip["final_over_clean_min"] == pytest.approx(0.95)
