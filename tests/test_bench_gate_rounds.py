"""bench.gate_rounds: adversarial and clean rounds counted from hand-made metrics rows."""

from __future__ import annotations

from bench.gate_rounds import count_rounds, gate_time
from contract.adversary import AdversarySettings


def _row(server_round: int, status: str, updates: list[str], aggregated: list[str], **extra: object) -> dict:
    row = {
        "round": server_round,
        "status": status,
        "update_hashes": dict.fromkeys(updates, "h"),
        "aggregated_sites": aggregated,
        "attribution": None,
        "quarantined": {"added": []},
    }
    return {**row, **extra}


ALL = ["site-0", "site-1", "site-2"]
ROWS = [
    {"round": 0, "status": "accepted", "aggregated_sites": [], "quarantined": {"added": []}},
    # site-1 attacks in rounds 1-2: caught and quarantined in round 1, kept out in round 2
    _row(
        1,
        "accepted",
        ALL,
        ["site-0", "site-2"],
        attribution={"suspects": ["site-1"]},
        quarantined={"added": ["site-1"]},
    ),
    _row(2, "accepted", ["site-0", "site-2"], ["site-0", "site-2"]),
    # clean, falsely rejected (no culprit found)
    _row(3, "rejected", ALL, []),
    # site-0 attacks in rounds 4-5: taken in round 4, the round rejected in round 5
    _row(4, "accepted", ALL, ALL),
    _row(5, "rejected", ALL, []),
    # clean; an honest site blamed and left out
    _row(
        6,
        "accepted",
        ALL,
        ["site-0", "site-1"],
        attribution={"suspects": ["site-2"]},
        quarantined={"added": ["site-2"]},
    ),
    # skipped: neither clean nor adversarial
    {"round": 7, "status": "skipped", "aggregated_sites": [], "quarantined": {"added": []}},
    # site-0 attacks again, but did not reply
    _row(8, "accepted", ["site-1", "site-2"], ["site-1", "site-2"]),
]
TABLES = (
    AdversarySettings(site=1, kind="toxic", from_round=1, until_round=2),
    AdversarySettings(site=0, kind="toxic", from_round=4, until_round=5),
    AdversarySettings(site=0, kind="toxic", from_round=8),
)


def test_adversarial_rounds_are_those_holding_its_update_and_caught_ones_are_not_in_the_global():
    first, second, third = count_rounds(ROWS, TABLES).episodes
    assert (first.site, first.held, first.taken, first.caught, first.quarantined) == ("site-1", [1], [], 1, [1])
    assert (second.site, second.held, second.taken, second.caught, second.quarantined) == ("site-0", [4, 5], [4], 1, [])
    assert (third.held, third.taken, third.caught, third.until_round) == ([], [], 0, None)


def test_clean_rounds_are_judged_rounds_without_an_adversarys_update():
    clean = count_rounds(ROWS, TABLES).clean
    assert clean.rounds == [2, 3, 6, 8]
    assert clean.false_rejections == [3, 6]
    assert clean.honest_quarantined == [(6, "site-2")]


def test_a_run_without_adversaries_counts_every_judged_round_clean():
    counts = count_rounds(ROWS, ())
    assert counts.episodes == [] and counts.clean.rounds == [1, 2, 3, 4, 5, 6, 8]
    assert counts.clean.false_rejections == [1, 3, 5, 6]


def test_gate_time_sums_judged_rounds_only():
    rows = [
        {"round": 0, "seconds": 100.0},
        {"round": 1, "gate_seconds": 2.0, "seconds": 10.0},
        {"round": 2, "seconds": 1.0},  # skipped: no gate ran
        {"round": 3, "gate_seconds": 3.5, "seconds": 15.0},
    ]
    assert gate_time(rows) == (5.5, 25.0)
