"""End-to-end runs of `fedvlm simulate` on the Flower Simulation Engine (Ray), with the tiny-test model."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from evaluation.utility import score_vqa
from server.checkpoint import LATEST, load_checkpoint
from simulations.synth import write_scenario
from tests.pii_checks import injected, leaked, run_outputs
from tests.small_run import SMALL_RUN_ARGS
from vlm.adapters import state_bytes, state_hash
from vlm.loading import compute_dtype, load_base, select_device
from vlm.records import load_dataset

pytestmark = pytest.mark.slow

SMALL = SMALL_RUN_ARGS


def _fedvlm(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedvlm.cli", *args]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(_fedvlm(*args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _simulate(out: Path, *args: str) -> subprocess.CompletedProcess:
    return _run("simulate", "--out", str(out), *SMALL, *args)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _sets(*overrides: str) -> list[str]:
    """--set arguments for each 'key=value'."""
    return [part for override in overrides for part in ("--set", override)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _committed_round(out: Path) -> int:
    """The round the run's checkpoint holds (its metrics row comes first, so a row alone is not yet committed)."""
    latest = out / "checkpoints" / LATEST
    return int(latest.read_text().removeprefix("round-")) if latest.is_file() else -1


def _killed_after_a_round(command: list[str], out: Path, rounds: int, until: Callable[[], bool] = lambda: True) -> int:
    """Start a run and SIGKILL it once a round is committed and until() holds; the last committed round (asserted
    mid-way)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if _committed_round(out) >= 1 and until():
            break
        time.sleep(0.2)
    # The SuperLink and ServerApp run in their own sessions: killed with the group, as a machine that dies would.
    run = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    for descendant in run:
        with contextlib.suppress(psutil.NoSuchProcess):
            descendant.kill()
    process.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(p) for p in run):
        time.sleep(0.2)
    assert not any(_alive(p) for p in run), "a process of the killed run is still running"
    done_before = _committed_round(out)
    assert 1 <= done_before < rounds, "the run must be killed mid-way for this test to mean anything"
    return done_before


def test_two_sites_two_rounds_and_peft_reload(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    result = _simulate(out, "--sites", "2", "--rounds", "2")
    rows = _rows(out)
    # No injected PII value in any log line, metric or file the run wrote (its raw synthetic data/ aside).
    values = injected(out / "data" / "site-0", out / "data" / "site-1")
    assert leaked(values, result.stdout + result.stderr) == [] and leaked(values, run_outputs(out)) == []
    assert sum(rows[1]["pii"]["sites"][site]["caption|PERSON"] for site in rows[1]["pii"]["sites"]) > 0
    assert [row["round"] for row in rows] == [0, 1, 2]
    assert all(row["accepted"] for row in rows)
    assert [row["participants"] for row in rows[1:]] == [2, 2]

    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert rows[2]["adapter_hash"] == state_hash(adapter) != rows[0]["adapter_hash"]
    assert rows[1]["bytes"] == {"down": 2 * state_bytes(adapter), "up": 2 * state_bytes(adapter)}
    assert rows[2]["train"]["examples"] > 0 and rows[2]["train"]["counts"]["records-kept"] == 48
    assert rows[2]["site_evaluation"]["sites"] == 2 and rows[2]["site_evaluation"]["total"] > 0
    assert "sex" in rows[2]["utility"]["groups"]

    # PEFT's own loader on the run's adapter reproduces the server's figure.
    _, processor = load_base(tiny_model_dir)
    model = PeftModel.from_pretrained(
        AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=compute_dtype(select_device())),
        out / "adapter",
    )
    records, _ = load_dataset(out / "data" / "server-eval")
    score = score_vqa(model, processor, records)
    assert (score.correct, score.total) == (rows[2]["utility"]["correct"], rows[2]["utility"]["total"])
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["model"]["preset"] == "tiny-test" and resolved["federation"]["rounds"] == 2


def test_killed_run_resumes_from_its_checkpoint(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    command = _fedvlm(
        "simulate", "--out", str(out), *SMALL, "--sites", "2", "--rounds", "4", "--set", "train.local_steps=12"
    )
    _killed_after_a_round(command, out, rounds=4)

    _run("simulate", "--out", str(out), "--resume")
    rows = _rows(out)
    assert [row["round"] for row in rows] == [0, 1, 2, 3, 4]
    checkpoint, adapter, _ = load_checkpoint(out / "checkpoints")
    assert (checkpoint.round, checkpoint.last_accepted_round) == (4, 4)
    assert rows[4]["adapter_hash"] == state_hash(adapter)
    assert rows[4]["adapter_hash"] == state_hash(load_file(out / "adapter" / "adapter_model.safetensors"))


def test_failing_site_is_recorded_and_too_few_sites_skip_the_round(tmp_path, tiny_model_dir):
    data = write_scenario("hospital", 3, tmp_path / "data", records_per_site=24, eval_records=16)
    (data / "site-2" / "metadata.jsonl").unlink()

    out = tmp_path / "enough"
    _simulate(out, "--sites", "3", "--rounds", "1", "--set", f"data.root='{data}'")
    (row,) = _rows(out)[1:]
    assert (row["sampled"], row["participants"], row["failures"], row["accepted"]) == (3, 2, 1, True)

    out = tmp_path / "too-few"
    _simulate(
        out, "--sites", "3", "--rounds", "1", "--set", f"data.root='{data}'", "--set", "federation.min_train_nodes=3"
    )
    start, row = _rows(out)
    assert (row["status"], row["accepted"], row["participants"]) == ("skipped", False, 2)
    assert start["adapter_hash"] == state_hash(load_file(out / "adapter" / "adapter_model.safetensors"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lora.rank=4", "lora.rank: unknown key"),
        ("gates.nope={}", "gates.nope: unknown gate; known: bias, contributions, leakage, privacy, safety, updates"),
        ("gates.utility={max_regression = -1.0}", "gates.utility.max_regression: Input should be greater than"),
    ],
)
def test_bad_config_fails_before_anything_runs(tmp_path, override, message):
    out = tmp_path / "never"
    result = subprocess.run(
        _fedvlm("simulate", "--out", str(out), "--set", override), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()


def _no_round_trained(out: Path, *args: str) -> subprocess.CompletedProcess:
    """A run in which no round could train: exit 1 and one line saying so."""
    result = subprocess.run(_fedvlm("simulate", "--out", str(out), *SMALL, *args), capture_output=True, text=True)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.count("fedvlm: error: no round could train") == 1
    return result


def test_sites_that_time_out_are_counted_and_the_round_skipped(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    _no_round_trained(out, "--sites", "2", "--rounds", "1", "--set", "federation.round_timeout_s=0.05")
    start, row = _rows(out)
    assert (row["status"], row["sampled"], row["participants"], row["failures"]) == ("skipped", 2, 0, 2)
    assert start["adapter_hash"] == state_hash(load_file(out / "adapter" / "adapter_model.safetensors"))


def test_missing_data_root_fails_before_anything_runs(tmp_path):
    out = tmp_path / "never"
    result = subprocess.run(
        _fedvlm("simulate", "--out", str(out), "--set", f"data.root='{tmp_path / 'nope'}'"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "data.root: missing folder" in result.stderr and "server-eval" in result.stderr
    assert not out.exists()


def test_resume_refuses_changed_settings(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    result = subprocess.run(
        _fedvlm("simulate", "--out", str(out), "--resume", "--set", "lora.r=4"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "only --rounds may change" in result.stderr


def test_overwrite_only_deletes_run_directories(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    result = subprocess.run(
        _fedvlm("simulate", "--out", str(tmp_path), "--overwrite"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "not a fedvlm run directory" in result.stderr
    assert keep.read_text() == "mine"


def test_sites_whose_pii_filter_cannot_run_do_not_train(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    no_model = "privacy.pii.spacy_model='not_installed'"
    result = _no_round_trained(out, "--sites", "2", "--rounds", "1", "--set", no_model)
    [_, row] = _rows(out)
    assert (row["status"], row["participants"], row["failures"]) == ("skipped", 0, 2)
    assert row["adapter_hash"] == _rows(out)[0]["adapter_hash"]
    # The sites' exceptions (logged at the site, type only at the server) name no PII either.
    assert "PiiUnavailable" in result.stdout + result.stderr
    values = injected(out / "data" / "site-0", out / "data" / "site-1")
    assert leaked(values, result.stdout + result.stderr + run_outputs(out)) == []


def test_a_killed_run_leaves_no_ray_process_behind(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    command = _fedvlm("simulate", "--out", str(out), *SMALL, "--sites", "2", "--rounds", "4")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not ((out / "metrics.jsonl").is_file() and len(_rows(out)) >= 2):
        time.sleep(0.2)
    ray = [p for p in psutil.Process(process.pid).children(recursive=True) if "watchdog" not in " ".join(p.cmdline())]
    assert any(p.name() == "raylet" for p in ray) and any("DashboardAgent" in " ".join(p.cmdline()) for p in ray)
    process.kill()  # the driver alone, as the OOM killer would
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p.is_running() for p in ray):
        time.sleep(0.2)
    assert [p.pid for p in ray if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
