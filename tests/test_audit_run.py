"""A run's audit log end to end: signed entries, a SIGKILL and a resume, report.html, then `fedvlm audit verify`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_simulation import SMALL, _fedvlm, _killed_after_a_round, _run

pytestmark = pytest.mark.slow


def _verify(run_dir, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fedvlm.cli", "audit", "verify", str(run_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_signed_resumed_run_verifies_and_tampering_is_caught(tmp_path, tiny_model_dir):
    keys, other = tmp_path / "keys", tmp_path / "other-keys"
    _run("audit", "keygen", "--out", str(keys))
    _run("audit", "keygen", "--out", str(other))
    out = tmp_path / "run"
    key = keys / "audit_signing_key.pem"
    command = _fedvlm(
        "simulate", "--out", str(out), *SMALL, "--sites", "2", "--rounds", "3", "--set", f"audit.signing_key='{key}'"
    )
    done_before = _killed_after_a_round(command, out, rounds=3)
    _run("simulate", "--out", str(out), "--resume")

    entries = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    kinds = [entry["kind"] for entry in entries]
    assert kinds[0] == "run-start" and kinds[-1] == "run-end" and kinds.count("resume") == 1
    resume = entries[kinds.index("resume")]["payload"]
    assert resume["from_round"] == done_before
    rounds = [entry["payload"]["row"]["round"] for entry in entries if entry["kind"] == "round"]
    assert rounds[: done_before + 1] == list(range(done_before + 1)) and rounds[-1] == 3
    assert all("signature" in entry for entry in entries)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert set(rows[1]["update_hashes"]) == {"site-0", "site-1"}
    report = (out / "report.html").read_text(encoding="utf-8")  # written by the resumed simulate
    assert "Audit log: verified" in report and "Run: complete" in report and "<td>signatures</td><td>present" in report

    public = keys / "audit_signing_key.pub.pem"
    result = _verify(out, "--public-key", str(public))
    assert result.returncode == 0 and "run ended" in result.stdout, result.stderr
    foreign = _verify(out, "--public-key", str(other / "audit_signing_key.pub.pem"))
    assert foreign.returncode == 1 and "signature" in foreign.stderr and "Traceback" not in foreign.stderr

    adapter = out / "adapter" / "adapter_model.safetensors"
    data = bytearray(adapter.read_bytes())
    data[len(data) // 2] ^= 0x01
    adapter.write_bytes(bytes(data))
    tampered = _verify(out, "--public-key", str(public))
    assert tampered.returncode == 1 and "adapter" in tampered.stderr and "Traceback" not in tampered.stderr
