"""Hostile input, fed as a hostile user would: to the loader, the CLI and a short simulation.

Every case asserts the exit status, a message naming file, line and field (or the option), no traceback on the
user's terminal, and no input value in any output, log or metric.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from server.checkpoint import Checkpoint, save_checkpoint
from server.run_dir import MARKER_TEXT, RunDir
from simulations.synth import write_scenario
from vlm.attributes import suppress_small_cells
from vlm.records import MAX_LINE_BYTES, load_dataset

SECRETS = ("Jane Q. Hostile", "MRN-998877", "patient_name", "4815162342")
GOOD = {"file_name": "a.png", "question": "is there a lesion?", "answer": "yes", "choices": ["yes", "no"]}
# (line, reason): one line each, whatever it holds; none may stop the loader or reach a message.
CORPUS: list[tuple[bytes, str]] = [
    (b"[" * 200_000, "malformed-json"),  # RecursionError in the parser
    (b'{"file_name": "a.png", "caption": "Jane Q. Hostile", "n": ' + b"9" * 5000 + b"}", "malformed-json"),
    (b'{"file_name": "a.png", "caption": "MRN-998877', "malformed-json"),  # truncated
    (b'{"file_name": "a.png", "caption": "Jane Q. Hostile \xff"}', "not-utf8"),
    (b'"Jane Q. Hostile"', "bad-record"),
    (b"null", "bad-record"),
    (json.dumps({"file_name": "../../etc/passwd", "caption": "MRN-998877"}).encode(), "bad-field"),
    (json.dumps({"file_name": "a\u0000.png", "caption": "MRN-998877"}).encode(), "bad-field"),
    (json.dumps({"file_name": "Jane Q. Hostile.png", "caption": "x"}).encode(), "missing-image"),
    (json.dumps({**GOOD, "question": "MRN-998877 <image>"}).encode(), "special-token"),
    (json.dumps({**GOOD, "choices": ["yes", "Jane Q. Hostile <image>"]}).encode(), "special-token"),
    (json.dumps({**GOOD, "choices": ["yes", "Jane Q. Hostile " * 400]}).encode(), "text-too-long"),
    (json.dumps({**GOOD, "answer": {"Jane Q. Hostile": 1}}).encode(), "bad-field"),
    (json.dumps({**GOOD, "attributes": "Jane Q. Hostile"}).encode(), "bad-field"),
    (b'{"caption": "' + b"x" * MAX_LINE_BYTES + b'"}', "line-too-long"),
]
LEAKY = {**GOOD, "attributes": {"patient_name": "Jane Q. Hostile", "mrn": "MRN-998877", "sex": "4815162342"}}


def _fedvlm(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fedvlm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _user_sees(result: subprocess.CompletedProcess) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text[-3000:]
    assert not any(secret in text for secret in SECRETS), text[-3000:]
    return text


def _site(folder: Path, lines: list[bytes | dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), "gray").save(folder / "a.png")
    raw = [line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines]
    (folder / "metadata.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    return folder


def _everything_written(folder: Path) -> str:
    return "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in {".jsonl", ".json", ".toml", ""}
    )


def test_the_loader_skips_every_hostile_line_counts_it_and_names_its_place(tmp_path):
    folder = _site(tmp_path / "s", [GOOD] + [line for line, _ in CORPUS] + [LEAKY])
    records, report = load_dataset(folder)
    assert len(records) == 2 and records[1].attributes == {}
    for number, (_, reason) in enumerate(CORPUS, start=2):
        assert any(p.startswith(f"{folder / 'metadata.jsonl'}:{number}: ") for p in report.problems), reason
    expected: dict[str, int] = {}
    for _, reason in CORPUS:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(report.skipped) == expected
    assert report.as_counts()["attribute-undeclared-dropped"] == 2
    assert report.as_counts()["attribute-not-allowed-dropped"] == 1
    assert not any(secret in problem for problem in report.problems for secret in SECRETS)


def test_small_groups_never_leave_and_cannot_be_recovered_from_the_others():
    groups = {
        "sex": {"F": {"correct": 9, "total": 20}, "M": {"correct": 1, "total": 2}},
        "age_band": {"18-39": {"correct": 3, "total": 6}, "40-59": {"correct": 2, "total": 7}},
        "site": {"a": {"correct": 1, "total": 3}, "b": {"correct": 0, "total": 4}, "c": {"correct": 5, "total": 9}},
    }
    assert suppress_small_cells(groups, 5) == {
        "age_band": groups["age_band"],  # M alone would be total - F: F goes too, and with it the attribute
        "site": {"c": groups["site"]["c"]},  # a and b together hold 7 >= 5
    }


def test_pii_commands_drop_undeclared_attributes_and_name_each_bad_line(tmp_path):
    site = _site(tmp_path / "site", [LEAKY, LEAKY, b"[" * 100_000, b'{"caption": "MRN-998877"}'])
    result = _fedvlm("pii", "filter", str(site), str(tmp_path / "out"))
    assert result.returncode == 0
    text = _user_sees(result)
    assert f"{site / 'metadata.jsonl'}:3: JSON nested too deeply" in text
    assert f"{site / 'metadata.jsonl'}:1: field 'attributes': dropped 2 undeclared name(s)" in text
    written = _everything_written(tmp_path / "out")
    assert not any(secret in written for secret in SECRETS)
    report = json.loads((tmp_path / "out" / "pii_report.json").read_text())
    assert report["loading"]["attribute-undeclared-dropped"] == 4

    only_bad = _site(tmp_path / "bad", [b"{oops", b'{"caption": "MRN-998877"}', b"7" * 5000])
    result = _fedvlm("pii", "scan", str(only_bad))
    text = _user_sees(result)
    assert result.returncode == 2 and "no valid record (3 skipped)" in text
    for number, words in ((1, "malformed JSON"), (2, "field 'file_name'"), (3, "JSON holds a value out of range")):
        assert f"{only_bad / 'metadata.jsonl'}:{number}: {words}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--config", "{tmp}"], "is a folder, not a configuration file"),
        (["simulate", "--config", "{tmp}/file.txt/c.toml"], "configuration file cannot be read"),
        (["simulate", "--out", "{tmp}/file.txt"], "--out names a file, not a folder"),
        (["pii", "filter", "{tmp}/site", "{tmp}/file.txt"], "OUT names a file, not a folder"),
        (["pii", "scan", "{tmp}/site", "--config", "{tmp}"], "is a folder"),
        (["data", "synth", "--scenario", "hospital", "--sites", "0", "--out", "{tmp}/d"], "--sites: must be at least"),
        (["data", "synth", "--scenario", "retail", "--sites", "1", "--records", "-3", "--out", "{tmp}/d"], "--records"),
        (["data", "synth", "--scenario", "hospital", "--sites", "1", "--out", "{tmp}/file.txt"], "names a file"),
        (["simulate", "--rounds", "0"], "--rounds: must be at least 1"),
    ],
)
def test_usage_errors_exit_2_with_one_message(tmp_path, args, message):
    (tmp_path / "file.txt").write_text("mine")
    _site(tmp_path / "site", [GOOD])
    result = _fedvlm(*[arg.format(tmp=tmp_path) for arg in args])
    assert result.returncode == 2 and message in _user_sees(result)
    assert (tmp_path / "file.txt").read_text() == "mine" and not (tmp_path / "d").exists()


def test_data_synth_refuses_a_non_empty_folder_and_overwrites_only_its_own(tmp_path):
    real = _site(tmp_path / "real", [GOOD])
    before = (real / "metadata.jsonl").read_bytes()
    for extra in ([], ["--overwrite"]):
        result = _fedvlm("data", "synth", "--scenario", "hospital", "--sites", "1", "--out", str(real), *extra)
        assert result.returncode == 2 and str(real) in _user_sees(result)
        assert (real / "metadata.jsonl").read_bytes() == before
    synthetic = tmp_path / "synthetic"
    args = ["data", "synth", "--scenario", "hospital", "--sites", "1", "--records", "2", "--eval-records", "2"]
    assert _fedvlm(*args, "--out", str(synthetic)).returncode == 0
    assert _fedvlm(*args, "--out", str(synthetic)).returncode == 2
    assert _fedvlm(*args, "--seed", "5", "--out", str(synthetic), "--overwrite").returncode == 0
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_overwrite_needs_the_run_marker_not_a_config_toml(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.toml").write_text("[model]\n")
    (folder / "thesis.tex").write_text("mine")
    result = _fedvlm("simulate", "--out", str(folder), "--overwrite")
    assert result.returncode == 2 and "not a fedvlm run directory" in _user_sees(result)
    assert (folder / "thesis.tex").read_text() == "mine"
    RunDir(folder).mark()
    assert RunDir(folder).is_run() and (folder / ".fedvlm-run").read_text() == MARKER_TEXT


def test_resume_refuses_fewer_rounds_than_done(tmp_path):
    out = tmp_path / "run"
    RunDir(out).mark()
    (out / "config.toml").write_text("[federation]\nrounds = 4\n")
    save_checkpoint(out / "checkpoints", Checkpoint(4, 4, {}), {}, {})
    result = _fedvlm("simulate", "--out", str(out), "--resume", "--rounds", "2")
    assert result.returncode == 2 and "has already run 4 rounds" in _user_sees(result)
    assert (out / "config.toml").read_text() == "[federation]\nrounds = 4\n"


def test_ctrl_c_during_pii_filter_leaves_no_partial_output(tmp_path):
    root = write_scenario("hospital", 1, tmp_path / "data", records_per_site=120, eval_records=1)
    out = tmp_path / "out"
    # a child inherits an ignored SIGINT (as earlier tests in this process may leave it): handle it here
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "fedvlm.cli", "pii", "filter", str(root / "site-0"), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 120
    while not any((p / "metadata.jsonl").is_file() for p in tmp_path.glob(".out.partial-*")):
        assert time.monotonic() < deadline and process.poll() is None, "the filter must be stopped mid-way"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stdout + stderr
    assert not out.exists() and list(tmp_path.glob(".out.partial-*")) == []


# A short simulation fed hostile sites (tiny-test model, 2 sites, 1-2 rounds).
SMALL = ["--set", "model.preset='tiny-test'", "--set", "train.local_steps=2", "--set", "train.batch_size=4"]


@pytest.mark.slow
def test_a_simulation_on_hostile_sites_trains_on_what_is_valid_and_leaks_nothing(tmp_path, tiny_model_dir):
    root = write_scenario("hospital", 2, tmp_path / "data", records_per_site=24, eval_records=16)
    metadata = root / "site-0" / "metadata.jsonl"
    lines = metadata.read_text().splitlines()
    leaky = [json.dumps({**json.loads(line), "attributes": LEAKY["attributes"]}) for line in lines[:12]]
    hostile = [line.decode("utf-8", "replace") for line, _ in CORPUS if len(line) < 100_000]
    metadata.write_text("\ufeff" + "\n".join(leaky + hostile + lines[12:]) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = _fedvlm(
        "simulate",
        "--out",
        str(out),
        "--sites",
        "2",
        "--rounds",
        "1",
        "--set",
        f"data.root='{root}'",
        *SMALL,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = _user_sees(result)
    assert f"{metadata}:13: " in text  # the site names each skipped line
    assert not any(secret in _everything_written(out) for secret in SECRETS)
    row = RunDir(out).read_metrics()[-1]
    assert row["participants"] == 2 and row["train"]["counts"]["records-attribute-undeclared-dropped"] == 24
    for groups in (row["site_evaluation"]["groups"], row["utility"]["groups"]):
        assert set(groups) <= {"sex", "age_band"}
        assert all(cell["total"] >= 5 for cells in groups.values() for cell in cells.values())


@pytest.mark.slow
def test_a_simulation_in_which_no_site_can_train_exits_1_with_one_line(tmp_path, tiny_model_dir):
    root = write_scenario("hospital", 2, tmp_path / "data", records_per_site=8, eval_records=8)
    for site in ("site-0", "site-1"):
        _site(root / site, [b"[" * 100_000, b'{"caption": "MRN-998877"}'])
    result = _fedvlm("simulate", "--out", str(tmp_path / "run"), "--sites", "2", "--rounds", "1",
                     "--set", f"data.root='{root}'", *SMALL, timeout=300)  # fmt: skip
    text = _user_sees(result)
    assert result.returncode == 1
    assert [line for line in text.splitlines() if line.startswith("fedvlm: error:")] == [
        "fedvlm: error: no round could train: no site sent a usable update in any of 1 round(s) "
        "(each site's reason is in the messages above)"
    ]
    # Each site's reason (file and line, never the value) reaches the server's record and the user's terminal.
    reasons = RunDir(tmp_path / "run").read_metrics()[-1]["site_failures"]
    assert [reason.split(":")[0] for reason in reasons] == ["site-0", "site-1"]
    assert all("metadata.jsonl" in reason and "MRN" not in reason for reason in reasons)
    flat = " ".join(text.split())
    assert all(f"site failed {' '.join(reason.split())}" in flat for reason in reasons)


def _processes_in_session(session: int) -> list[str]:
    """What still runs of a session (Ray's GCS, raylet, agents and workers included)."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if os.getsid(process.pid) == session:
                found.append(process.info["name"])
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_ctrl_c_mid_round_stops_cleanly_and_resume_continues(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "fedvlm.cli", "simulate", "--out", str(out), "--sites", "2", "--rounds", "4",
               *SMALL, "--set", "data.records_per_site=24", "--set", "data.eval_records=16",
               "--set", "train.local_steps=12"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (out / "metrics.jsonl").is_file() or len(RunDir(out).read_metrics()) < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    time.sleep(0.5)  # into round 2
    run = [p for p in psutil.Process(process.pid).children(recursive=True) if "watchdog" not in " ".join(p.cmdline())]
    commands = [" ".join(p.cmdline()) for p in run]
    assert any("flower-superlink" in command for command in commands) and any(p.name() == "raylet" for p in run)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - started < 20
    assert process.returncode == 130 and "Traceback" not in stdout + stderr
    assert [line for line in stderr.splitlines() if line.startswith("fedvlm:")] == [
        f"fedvlm: interrupted; stopped without recording the round in progress "
        f"(continue with: fedvlm simulate --out {out} --resume)"
    ]
    rows = RunDir(out).read_metrics()
    assert [row["round"] for row in rows] == list(range(len(rows))) and 2 <= len(rows) <= 4, "stopped mid-way"
    assert all(row["status"] == "accepted" for row in rows)  # no round the interrupt cut short was recorded
    time.sleep(2.0)
    assert _processes_in_session(process.pid) == []  # nothing of the command's own session is left
    assert [p.name() for p in run if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []  # nor of the run

    resumed = _fedvlm("simulate", "--out", str(out), "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = RunDir(out).read_metrics()
    assert [row["round"] for row in rows] == [0, 1, 2, 3, 4]
    assert all(row["status"] == "accepted" and row["participants"] == 2 for row in rows[1:])
