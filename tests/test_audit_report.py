"""`fedvlm audit report`: a self-contained HTML report of a hand-built run folder, its figures and audit verdict."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from audit.hashing import file_hash
from audit.log import LOG_NAME, AuditLog
from audit.report import REPORT_NAME, write_report
from fedvlm.cli import main

RUN_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"
BASE_HASH, ENV_HASH = "b1" * 32, "e7" * 32
CONFIG = """
[model]
preset = "tiny"
path = ""
[data]
scenario = "hospital"
root = ""
records_per_site = 240
eval_records = 240
[federation]
sites = 3
[privacy.pii]
enabled = true
default_operator = "placeholder"
ocr = true
[privacy.dp]
enabled = true
target_epsilon = 8.0
delta = 1e-05
max_grad_norm = 1.0
accountant = "rdp"
[privacy.central]
enabled = false
"""
PII = {"caption|PERSON": 37, "image-text|MEDICAL_RECORD_NUMBER": 5}  # every round: the same dataset
UTILITY_REASON = "regression 0.15 above max_regression 0.02"
BIAS_REASON = "sex: difference 0.41 above max_difference 0.3"


def _gate(passed: bool, reason: str = "", figures: dict | None = None) -> dict:
    return {"passed": passed, "mode": "enforce", "figures": figures or {}, "reason": reason}


def _bias(passed: bool, difference: float, reason: str = "") -> dict:
    figures = {"sex": {"difference": difference, "current_difference": 0.05, "widening": 0.0, "standard_error": 0.02}}
    return _gate(passed, reason, figures)


def _ledger(epsilon: float) -> dict:
    return {"site-1": {"epsilon": epsilon, "budget_epsilon": 8.0, "delta": 1e-05, "steps": 25, "status": "trained"}}


def _row(number: int, status: str, correct: int, gates: dict, epsilon: float | None, **extra: object) -> dict:
    groups = {"sex": {"F": {"correct": 30, "total": 40}, "M": {"correct": 40, "total": 50}}}
    row = {
        "round": number,
        "status": status,
        "accepted": status == "accepted",
        "utility": {"vqa_accuracy": correct / 200, "correct": correct, "total": 200, "groups": groups},
        "gates": gates,
        "privacy": {"central": None, "sites": _ledger(epsilon) if epsilon is not None else {}},
        "aggregated_sites": [],
        "attribution": None,
        "quarantined": {"sites": [], "added": []},
    }
    if number:
        row["pii"] = {"sites": {"site-0": PII}}
        row["train"] = {"counts": {"records-kept": 720, "records-holdout": 144, "pii-records-dropped-by-operator": 0}}
    row.update(extra)
    return row


def _trials(passing: str | None) -> dict:
    return {
        site: {"passed": site == passing, "vqa_accuracy": 0.5, "failed_gates": [] if site == passing else ["utility"]}
        for site in ("site-0", "site-1", "site-2")
    }


def _rows(dp: bool = True) -> list[dict]:
    """Round 0, an accepted round, a rejected one (no single site to blame), one accepted without site-2."""
    passed = {"utility": _gate(True), "bias": _bias(True, 0.05)}
    no_culprit = {
        "suspects": [],
        "reason": "no single site's absence makes the aggregate pass",
        "trials": _trials(None),
    }
    named = {"site-0,site-1": {"passed": False, "vqa_accuracy": 0.4, "failed_gates": ["utility"]}}  # a gate's strays
    culprit = {"suspects": ["site-2"], "reason": "", "trials": {**named, **_trials("site-2")}}
    return [
        _row(0, "accepted", 100, passed, None),
        _row(1, "accepted", 120, passed, 0.61 if dp else None, aggregated_sites=["site-0", "site-1", "site-2"]),
        _row(
            2,
            "rejected",
            90,
            {"utility": _gate(False, UTILITY_REASON), "bias": _bias(True, 0.2)},
            0.95 if dp else None,
            attribution=no_culprit,
        ),
        _row(
            3,
            "accepted",
            140,
            {"utility": _gate(True), "bias": _bias(False, 0.41, BIAS_REASON)},
            1.23 if dp else None,
            attribution=culprit,
            aggregated_sites=["site-0", "site-1"],
            quarantined={"sites": [], "added": ["site-2"]},
        ),
    ]


def _files(run: Path) -> dict[str, str]:
    return {name: file_hash(run / name) for name in ("config.toml", "environment.json", "metrics.jsonl")}


def build_run(run: Path, ended: bool = True, dp: bool = True) -> Path:
    """A run folder written as the round loop writes one: metrics row, then its audit entry naming the files."""
    run.mkdir()
    (run / "config.toml").write_text(CONFIG, encoding="utf-8")
    (run / "environment.json").write_text(json.dumps({"hash": ENV_HASH, "base_model_hash": BASE_HASH}))
    (run / "federation_id").write_text(RUN_ID + "\n")
    log = AuditLog(run / LOG_NAME)
    start = {"run_id": RUN_ID, "base_model_hash": BASE_HASH, "code": {"package": "0.1.0"}}
    hashes = {
        "environment_sha256": file_hash(run / "environment.json"),
        "config_sha256": file_hash(run / "config.toml"),
    }
    log.append("run-start", start | hashes)
    for row in _rows(dp):
        with (run / "metrics.jsonl").open("a", encoding="utf-8") as metrics:
            metrics.write(json.dumps(row) + "\n")
        log.append("round", {"row": row, "files": _files(run)})
    if ended:
        log.append("run-end", {"last_round": 3, "adapter_hash": "ad" * 32})
    return run


def _report(run: Path) -> str:
    path, _ = write_report(run)
    assert path == run / REPORT_NAME
    return path.read_text(encoding="utf-8")


def _section(page: str, anchor: str) -> str:
    return page.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]


def test_the_report_is_self_contained_with_png_data_uris_only(tmp_path: Path) -> None:
    page = _report(build_run(tmp_path / "run"))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", page, re.IGNORECASE)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)
    assert len(sources) == len(re.findall(r"<img ", page)) == 4  # utility, groups, bias, ε
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1], validate=True).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_report_holds_the_hand_chosen_figures(tmp_path: Path) -> None:
    page = _report(build_run(tmp_path / "run"))
    assert "Audit log: verified (6 entries, 3 files checked)" in page
    assert "Run: complete" in page and "INCOMPLETE" not in page.split("<section", 1)[0]
    audit = _section(page, "audit")
    assert all(value in audit for value in (RUN_ID, BASE_HASH, ENV_HASH))
    utility = _section(page, "utility")
    # 100/200, 120/200, 90/200, 140/200; the last round's groups: 30/40 and 40/50.
    for line in ("<td>0</td><td>accepted</td><td>0.5</td>", "<td>2</td><td>rejected</td><td>0.45</td>"):
        assert line in utility
    assert "<td>sex</td><td>F</td><td>30</td><td>40</td><td>0.75</td>" in utility
    assert "<td>sex</td><td>M</td><td>40</td><td>50</td><td>0.8</td>" in utility
    assert "<td>3</td><td>sex</td><td>0.41</td><td>0.05</td><td>0</td><td>0.02</td>" in utility
    gates = _section(page, "gates")
    assert f"failed</span> (enforce): {UTILITY_REASON}" in gates
    assert f"failed</span> (enforce): {BIAS_REASON}" in gates
    assert "accepted without site-2 (the full aggregate failed)" in gates
    assert "Round 3: attribution, suspects site-2" in gates
    assert "<td>site-0,site-1</td><td><span" in gates
    assert "Round 2: attribution, suspects none found (no single site&#x27;s absence" in gates
    privacy = _section(page, "privacy")
    assert "ε 1.23 of budget 8" in privacy and "ε 0.61 of budget 8" in privacy and "No DP" not in privacy
    pii = _section(page, "pii")
    # Each round reports the same dataset: 37 and 5 (total 42) from the last round, never the sums 111 and 15.
    assert (
        "<td>caption · PERSON</td><td>37</td>" in pii and "<td>image-text · MEDICAL_RECORD_NUMBER</td><td>5</td>" in pii
    )
    assert "<td><b>total</b></td><td>42</td>" in pii and "111" not in pii
    card = _section(page, "model-card")
    assert "Not for clinical decisions" in card and "the built-in &#x27;tiny&#x27; preset" in card
    assert "target_epsilon = 8.0" in card and "site-1: ε 1.23 of budget 8 spent." in card
    assert (
        "<td>records-kept</td><td>720</td>" in card
        and "3 sites configured; the metrics name: site-0, site-1, site-2" in card
    )
    assert "round 3): 0.7 (140 of 200)" in card


def test_a_run_without_dp_says_so(tmp_path: Path) -> None:
    page = _report(build_run(tmp_path / "run", dp=False))
    assert "No DP: this run recorded no ε" in _section(page, "privacy")
    assert page.count("<img ") == 3


def test_a_run_without_run_end_is_marked_incomplete(tmp_path: Path) -> None:
    page = _report(build_run(tmp_path / "run", ended=False))
    assert "Audit log: verified (5 entries, 3 files checked)" in page
    assert "Run: INCOMPLETE (no run-end entry in the audit log; the metrics stop at round 3)" in page


def test_a_tampered_log_or_file_shows_failed(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    log = run / LOG_NAME
    # Round 1's row is line 3; the chain breaks at line 4, whose prev hashed line 3 as it was.
    log.write_bytes(log.read_bytes().replace(b'"correct":120', b'"correct":121', 1))
    page = _report(run)
    assert "Audit log: FAILED: audit.jsonl: line 4 (seq 3): prev does not match the hash of the line before" in page
    assert "Run: INCOMPLETE (the audit log did not verify" in page
    other = build_run(tmp_path / "other")
    (other / "config.toml").write_text(CONFIG.replace("8.0", "80.0"), encoding="utf-8")
    assert "Audit log: FAILED: config.toml: SHA-256 differs from the hash named by entry 4 (seq 4)" in _report(other)


def test_the_command_writes_the_report_where_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = build_run(tmp_path / "run")
    assert main(["audit", "report", str(run)]) == 0
    assert capsys.readouterr().out == f"wrote {run / REPORT_NAME} (audit log verified; run complete)\n"
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["audit", "report", str(run), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (run / REPORT_NAME).read_text(encoding="utf-8")
    assert main(["audit", "report", str(tmp_path / "missing")]) == 2


def test_a_report_that_cannot_be_written_is_one_line_and_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from simulations.runner import report

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    report(not_a_folder)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("fedvlm: report.html not written: ")
    assert captured.err.count("\n") == 1


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel[:3], colour))


def test_chromium_renders_the_report_with_its_plots_and_no_console_errors(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make system installs it)"
    page = write_report(build_run(tmp_path / "run"))[0]
    flags = [chromium, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()], check=True, timeout=120)
    pixels = list(Image.open(shot).convert("RGB").getdata())
    assert len(set(pixels)) > 200  # text, tables and plots, not a blank page
    # matplotlib's tab:blue (group bars, ε line) and tab:green (accepted markers) appear only in the plots.
    assert sum(_near(pixel, (31, 119, 180)) for pixel in pixels) > 500
    assert sum(_near(pixel, (44, 160, 44)) for pixel in pixels) > 50
    dom = subprocess.run(
        [*flags, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "fedvlm run report: " + RUN_ID in dom.stdout
    assert "CONSOLE" not in dom.stderr and "Failed to load resource" not in dom.stderr
