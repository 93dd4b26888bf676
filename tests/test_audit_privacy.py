"""The empirical privacy audit: canaries and their secret, the figures from hand cases, `fedvlm audit privacy`."""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from audit.canaries import WORDS, draw_canaries, read_secret, secret_path, write_secret
from audit.errors import AuditError
from audit.privacy_audit import accountant_epsilon, audit_figures
from contract.run_config import ConfigError, load_config
from evaluation.likelihood import likelihood_margin
from simulations.audit_canaries import plant
from tests.small_run import SMALL_RUN_ARGS


def _held_out(record_id: str, fraction: float = 0.2) -> bool:
    """The held-out split's rule, written out: the first 8 bytes of the id's SHA-256 as a fraction of 2^64."""
    return int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "big") / 2**64 < fraction


def _audit(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fedvlm.cli", "audit", "privacy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_canaries_are_random_answers_included_about_half_the_time() -> None:
    canaries = draw_canaries(1000, 3, random.Random(1), alternatives=7)
    assert draw_canaries(1000, 3, random.Random(1), alternatives=7) == canaries
    assert 429 < sum(canary.included for canary in canaries) < 571  # Bin(1000, 1/2): ± 4.5 standard deviations
    assert {canary.site for canary in canaries} == {0, 1, 2}
    for canary in canaries[:50]:
        words = canary.answer.split()
        assert len(words) == 3 and set(words) <= set(WORDS)
        assert len(set(canary.alternatives)) == 7 and canary.answer not in canary.alternatives
    # No two canaries share an answer or a question key (4096 of each), and no answer occurs in a question: an
    # excluded canary's answer would be in the training data ("what is on the blue green red card?").
    assert len({canary.answer for canary in canaries}) == len({canary.question for canary in canaries}) == 1000
    questions = " | ".join(canary.question for canary in canaries)
    assert not any(canary.answer in questions for canary in canaries)
    assert any(canary.answer.endswith(" card") for canary in canaries)  # such answers are still drawn
    with pytest.raises(ValueError):
        draw_canaries(1025, 1, random.Random(1))
    assert canaries[0].image().size == (32, 32) and canaries[0].image() != canaries[1].image()


def test_the_secret_lives_beside_the_run_and_reads_back(tmp_path: Path) -> None:
    assert secret_path(tmp_path / "run") == tmp_path / "run.audit-secret.json"
    canaries = draw_canaries(5, 2, random.Random(2), alternatives=3)
    write_secret(tmp_path / "secret.json", canaries)
    assert read_secret(tmp_path / "secret.json") == canaries
    with pytest.raises(AuditError, match="no audit secret"):
        read_secret(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text('{"version": 1, "canaries": [{"index": 0}]}')
    with pytest.raises(AuditError, match="malformed"):
        read_secret(tmp_path / "bad.json")


def test_planted_canaries_take_training_lines_and_keep_the_records_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "site-0"
    folder.mkdir()
    records = [json.dumps({"file_name": f"{n:05d}.png", "caption": f"record {n}"}) for n in range(30)]
    (folder / "metadata.jsonl").write_text("".join(line + "\n" for line in records))
    canaries = [canary for canary in draw_canaries(40, 1, random.Random(3), alternatives=1) if canary.included][:12]
    plant(folder, canaries, 0.2, random.Random(4))
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 42
    planted = [number for number, line in enumerate(lines, start=1) if "answer" in json.loads(line)]
    assert len(planted) == 12 and not any(_held_out(f"site-0:{number}") for number in planted)
    assert [line for line in lines if "caption" in json.loads(line)] == records
    answers = sorted(json.loads(lines[number - 1])["answer"] for number in planted)
    assert answers == sorted(canary.answer for canary in canaries)
    files = {json.loads(lines[number - 1])["file_name"] for number in planted}
    assert len(files) == 12 and all((folder / name).is_file() for name in files)
    assert not files & {f"{n:05d}.png" for n in range(30)}


def test_canaries_need_synthetic_data() -> None:
    with pytest.raises(ConfigError, match="simulation.audit.canaries"):
        load_config(overrides=["simulation.audit.canaries=4", "data.root='/somewhere'"])


def test_accountant_epsilon_is_the_largest_recorded_and_infinite_without_dp() -> None:
    rows = [
        {"privacy": {"sites": {}, "central": None}},
        {"privacy": {"sites": {"site-0": {"epsilon": 2.0}, "site-1": {"epsilon": 3.5}}, "central": None}},
        {
            "privacy": {
                "sites": {"site-0": {"epsilon": 2.5}, "site-1": {"status": "skipped"}},
                "central": {"epsilon": 1},
            }
        },
    ]
    assert accountant_epsilon(rows) == 3.5
    assert accountant_epsilon([{"privacy": {"sites": {}, "central": {"epsilon": 4.0}}}]) == 4.0
    assert accountant_epsilon(rows[:1]) == math.inf


def test_audit_figures_on_a_hand_case() -> None:
    scores = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    included = [True, True, False, True, False, True, False, False, True, False]
    # k = 3: members guessed for 9, 8, 7 (right, right, wrong); non-members for 2, 1, 0 (right, wrong, right).
    ranks = [1, 2, 64, 64, 4, 1, 64, 32, 64, 64]
    figures = audit_figures(scores, included, ranks, candidates=64, k=3, delta=1e-5, accountant=math.inf)
    assert (figures["guesses"], figures["correct"], figures["included"]) == (6, 4, 5)
    assert figures["epsilon_lower_bound"] == 0.0  # 4 of 6 is well within chance
    # Member/non-member pairs ordered right: 9 and 8 beat all 5, 6 beats 4, 4 beats 3, 1 beats 1: 5+5+4+3+1 = 18.
    assert figures["auc"] == pytest.approx(18 / 25)
    # Exposure log2(64) - log2(rank): members 6, 5, 0, 6, 0; non-members 0, 4, 0, 1, 0.
    assert figures["exposure_included"] == pytest.approx(17 / 5)
    assert figures["exposure_excluded"] == pytest.approx(5 / 5)
    assert figures["accountant_epsilon"] is None and figures["within_accountant"]
    perfect = audit_figures(scores, [True] * 5 + [False] * 5, ranks, 64, k=5, delta=0.0, accountant=1.0)
    # All 10 right at δ = 0: p = q^10 < 0.05 while ε < ln(q / (1 - q)) with q = 0.05^(1/10).
    q = 0.05 ** (1 / 10)
    assert perfect["epsilon_lower_bound"] == pytest.approx(math.log(q / (1 - q)), abs=1e-5)
    assert perfect["auc"] == 1.0 and not perfect["within_accountant"]


def test_the_margin_compares_the_answer_with_the_alternatives_mean_likelihood() -> None:
    # p(answer) = 0.5, alternatives 0.1 and 0.3 (mean 0.2): log(0.5 / 0.2).
    assert likelihood_margin(math.log(0.5), [math.log(0.1), math.log(0.3)]) == pytest.approx(math.log(2.5))
    # As likely as every alternative: 0, however unlikely all of them are (no underflow at 1e-400).
    assert likelihood_margin(-921.0, [-921.0] * 31) == pytest.approx(0.0, abs=1e-9)
    assert likelihood_margin(-900.0, [-921.0, -921.0]) == pytest.approx(21.0)


def test_missing_secret_or_adapter_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    no_secret = _audit(str(run))
    assert no_secret.returncode == 2 and "no audit secret" in no_secret.stderr
    assert len(no_secret.stderr.strip().splitlines()) == 1 and "Traceback" not in no_secret.stderr
    write_secret(secret_path(run), draw_canaries(4, 1, random.Random(5), alternatives=2))
    no_adapter = _audit(str(run))
    assert no_adapter.returncode == 2 and "no published adapter" in no_adapter.stderr
    assert len(no_adapter.stderr.strip().splitlines()) == 1 and "Traceback" not in no_adapter.stderr
    elsewhere = _audit(str(run), "--secret", str(tmp_path / "nowhere.json"))
    assert elsewhere.returncode == 2 and "nowhere.json" in elsewhere.stderr


@pytest.mark.slow
def test_a_dp_run_with_canaries_audits_within_its_accountant(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "run"
    dp = ["privacy.dp.enabled=true", "privacy.dp.target_epsilon=4.0", "simulation.audit.canaries=12"]
    command = [sys.executable, "-m", "fedvlm.cli", "simulate", "--out", str(out), "--sites", "2", "--rounds", "2"]
    sets = [part for override in dp for part in ("--set", override)]
    run = subprocess.run([*command, *SMALL_RUN_ARGS, *sets], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    secret = tmp_path / "run.audit-secret.json"
    assert secret.is_file() and not any(path.name == secret.name for path in out.rglob("*"))
    canaries = read_secret(secret)
    assert len(canaries) == 12
    included = [canary for canary in canaries if canary.included]
    excluded = [canary for canary in canaries if not canary.included]
    # Nothing the run wrote outside the sites' data, nor its output, holds a canary's answer or question key.
    outputs = "\n".join(
        path.read_bytes().decode("latin-1")
        for path in out.rglob("*")
        if path.is_file() and "data" not in path.relative_to(out).parts
    )
    outputs += run.stdout + run.stderr
    assert sum(c.answer in outputs or c.question in outputs for c in canaries) == 0
    data = "\n".join(path.read_text() for path in out.glob("data/*/metadata.jsonl"))
    assert sum(c.answer in data for c in excluded) == 0 and sum(c.question in data for c in excluded) == 0
    assert sum(c.question in data for c in included) == len(included)
    # Every canary is on a training line, and the PII filter kept every record: the sites trained on them all.
    sites = sorted(out.glob("data/site-*"))
    ids = [
        f"{site.name}:{n}"
        for site in sites
        for n in range(1, len((site / "metadata.jsonl").read_text().splitlines()) + 1)
    ]
    counts = json.loads((out / "metrics.jsonl").read_text().splitlines()[1])["train"]["counts"]
    assert counts["records-train"] == sum(not _held_out(i) for i in ids)
    assert counts["records-holdout"] == sum(_held_out(i) for i in ids)

    result = _audit(str(out), "--k", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((out / "privacy_audit.json").read_text())
    assert (figures["canaries"], figures["guesses"], figures["included"]) == (12, 6, len(included))
    assert 0 <= figures["correct"] <= 6
    if 0 < len(included) < 12:  # all in or all out (odds 1 in 2048): no AUC, one exposure
        assert 0.0 <= figures["auc"] <= 1.0
        assert 0.0 <= figures["exposure_included"] <= 6.0 and 0.0 <= figures["exposure_excluded"] <= 6.0
    assert 0.0 < figures["accountant_epsilon"] <= 4.0 * 1.01 and figures["delta"] == 1e-5
    assert 0.0 <= figures["epsilon_lower_bound"] <= figures["accountant_epsilon"]
    assert "empirical ε" in result.stdout and sum(c.answer in result.stdout for c in canaries) == 0
