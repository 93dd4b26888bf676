"""The site's filter stage on the synthetic data: no injected PII reaches a training batch; CLI; fail closed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from client.site import site_data
from privacy import filter_stage
from privacy.pii.settings import PiiSettings
from privacy.pii.text import PiiUnavailable
from simulations.synth import write_scenario
from tests.pii_checks import injected, leaked
from vlm import training
from vlm.lora import LoraSettings, load_with_lora
from vlm.training import TrainSettings, train_lora


@pytest.fixture(scope="module")
def scenario_roots(tmp_path_factory) -> dict[str, Path]:
    return {
        scenario: write_scenario(scenario, 2, tmp_path_factory.mktemp(scenario), records_per_site=24, eval_records=4)
        for scenario in ("hospital", "retail")
    }


@pytest.mark.parametrize("scenario", ["hospital", "retail"])
def test_no_injected_pii_reaches_a_training_batch(scenario, scenario_roots, tiny_model_dir, monkeypatch):
    site = scenario_roots[scenario] / "site-0"
    data = site_data(str(site), 0.2, PiiSettings())
    counts = data.counts()
    assert counts["pii-records-in"] == 24 == counts["pii-records-out"]
    assert counts["pii|caption|PERSON"] + counts["pii|caption|ADDRESS"] > 0 and counts["pii-images-rebuilt"] == 24
    model, processor = load_with_lora(str(tiny_model_dir), LoraSettings())
    batches = []
    encode = training.encode_batch

    def recording(processor, pairs):
        batch = encode(processor, pairs)
        batches.append(processor.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True))
        return batch

    monkeypatch.setattr(training, "encode_batch", recording)
    settings = TrainSettings(local_steps=4, batch_size=len(data.train), learning_rate=1e-3)
    train_lora(model, processor, data.train, data.images, settings, seed=0)
    decoded = " ".join(text for batch in batches for text in batch)
    assert len(batches) == 4 and "<PERSON>" in decoded
    assert leaked(injected(site), decoded) == []


def test_the_filter_runs_once_per_dataset(scenario_roots, monkeypatch):
    site = scenario_roots["hospital"] / "site-1"
    records = filter_stage.load_dataset(site)[0]
    first = filter_stage.filter_records(site, records, PiiSettings())

    def must_not_run(*args, **kwargs):
        raise AssertionError("filtered again")

    monkeypatch.setattr(filter_stage, "PiiFilter", must_not_run)
    assert filter_stage.filter_records(site, records, PiiSettings())[1] == first[1]
    with pytest.raises(AssertionError, match="filtered again"):  # other settings: filtered anew
        filter_stage.filter_records(site, records, PiiSettings(score_threshold=0.5))


def test_the_site_refuses_to_load_data_when_the_filter_cannot_run(scenario_roots):
    with pytest.raises(PiiUnavailable):
        site_data(str(scenario_roots["retail"] / "site-1"), 0.2, PiiSettings(spacy_model="no_such_model"))


def _fedvlm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedvlm.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_scan_counts_and_filter_writes_a_clean_dataset(scenario_roots, tmp_path):
    site = scenario_roots["retail"] / "site-1"
    scan = _fedvlm("pii", "scan", str(site))
    assert scan.returncode == 0, scan.stderr[-2000:]
    report = json.loads(scan.stdout)
    assert report["events"]["records-in"] == 24 and report["entities_total"]["PERSON"] > 0
    assert leaked(injected(site), scan.stdout + scan.stderr) == []
    out = tmp_path / "clean"
    written = _fedvlm("pii", "filter", str(site), str(out))
    assert written.returncode == 0, written.stderr[-2000:]
    assert json.loads((out / "pii_report.json").read_text())["events"]["records-out"] == 24
    clean_text = (out / "metadata.jsonl").read_text(encoding="utf-8")
    assert len(clean_text.splitlines()) == 24 and leaked(injected(site), clean_text) == []
    again = _fedvlm("pii", "filter", str(site), str(out))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_cli_drop_operator_removes_records(scenario_roots, tmp_path):
    site = scenario_roots["retail"] / "site-0"
    result = _fedvlm(
        "pii", "filter", str(site), str(tmp_path / "o"), "--set", 'privacy.pii.operators={EMAIL_ADDRESS="drop"}'
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = json.loads((tmp_path / "o" / "pii_report.json").read_text())["events"]
    assert events["records-dropped-by-operator"] > 0
    assert events["records-out"] == 24 - events["records-dropped-by-operator"]
    assert "@" not in (tmp_path / "o" / "metadata.jsonl").read_text()


def test_cli_fails_closed_and_a_huge_text_field_is_rejected_by_name(tmp_path, scenario_roots):
    unavailable = _fedvlm(
        "pii", "scan", str(scenario_roots["retail"] / "site-0"), "--set", "privacy.pii.spacy_model='nope'"
    )
    assert unavailable.returncode == 2 and "PII filter cannot run" in unavailable.stderr
    site = tmp_path / "site"
    site.mkdir()
    source = scenario_roots["hospital"] / "site-0"
    (site / "00001.png").write_bytes((source / "00001.png").read_bytes())
    secret = "Zbigniew Brzęczyszczykiewicz "
    lines = [{"file_name": "00001.png", "caption": secret * 40_000}, {"file_name": "00001.png", "caption": "fine"}]
    (site / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    scan = _fedvlm("pii", "scan", str(site))
    assert scan.returncode == 0, scan.stderr[-2000:]
    assert json.loads(scan.stdout)["loading"]["skipped-text-too-long"] == 1
    assert "metadata.jsonl:1: field 'caption' has 1160000 characters" in scan.stderr
    assert "Zbigniew" not in scan.stdout + scan.stderr


def test_a_disabled_filter_says_so_in_the_counts(scenario_roots):
    site = scenario_roots["retail"] / "site-1"
    records = filter_stage.load_dataset(site)[0]
    kept, counts = filter_stage.filter_records(site, records, PiiSettings(enabled=False))
    assert kept == records and counts["pii-enabled"] == 0 and counts["pii-records-out"] == 0
    assert set(counts) == set(filter_stage.filter_records(site, records, PiiSettings())[1])
