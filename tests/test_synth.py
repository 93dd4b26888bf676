import json
import warnings
from collections import Counter

import pydicom
from PIL import Image

from simulations.synth import INJECTED_PII, SERVER_EVAL, write_scenario
from vlm.records import load_dataset


def _answers(folder, question_start):
    lines = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    return Counter(line["answer"] for line in lines if line["question"].startswith(question_start))


def test_every_written_record_is_valid(tmp_path):
    for scenario in ("hospital", "retail"):
        root = write_scenario(scenario, 3, tmp_path / scenario, records_per_site=20, eval_records=10)
        for folder in [root / f"site-{i}" for i in range(3)] + [root / SERVER_EVAL]:
            records, report = load_dataset(folder)
            assert report.kept == len(records) and sum(report.skipped.values()) == 0
            assert all(
                r.question and r.answer and r.caption and {"sex", "age_band"} <= r.attributes.keys() for r in records
            )
        assert len(load_dataset(root / SERVER_EVAL)[0]) == 10


def test_sites_are_non_iid(tmp_path):
    root = write_scenario("hospital", 4, tmp_path / "h", records_per_site=300, eval_records=10)
    first, last = _answers(root / "site-0", "which side"), _answers(root / "site-3", "which side")
    assert first["left"] / sum(first.values()) > 0.65 and last["right"] / sum(last.values()) > 0.65
    sexes = [Counter(r.attributes["sex"] for r in load_dataset(root / f"site-{i}")[0]) for i in (0, 3)]
    assert sexes[0]["F"] > sexes[0]["M"] and sexes[1]["M"] > sexes[1]["F"]


def test_generation_is_deterministic(tmp_path):
    a = write_scenario("retail", 2, tmp_path / "a", records_per_site=8, eval_records=4, seed=3)
    b = write_scenario("retail", 2, tmp_path / "b", records_per_site=8, eval_records=4, seed=3)
    c = write_scenario("retail", 2, tmp_path / "c", records_per_site=8, eval_records=4, seed=4)

    def read(root):
        return (root / "site-1" / "metadata.jsonl").read_bytes() + (root / "site-1" / "00003.jpg").read_bytes()

    assert read(a) == read(b) != read(c)


def test_site_data_carries_pii_in_text_metadata_and_dicom_and_server_eval_does_not(tmp_path):
    root = write_scenario("hospital", 1, tmp_path / "h", records_per_site=8, eval_records=4)
    site = root / "site-0"
    injected = json.loads((site / INJECTED_PII).read_text())
    text = (site / "metadata.jsonl").read_text()
    assert injected and sum(value in text for value in injected) >= 8
    header = pydicom.dcmread(site / "00000.dcm", stop_before_pixels=True)
    assert str(header.PatientName).split("^")[0] in text + " ".join(injected)
    with Image.open(site / "00001.png") as png:
        assert png.info["Patient"] in injected
    assert not (root / SERVER_EVAL / INJECTED_PII).exists()
    assert not any(value in (root / SERVER_EVAL / "metadata.jsonl").read_text() for value in injected)


def test_dicom_headers_are_written_without_encoding_warnings(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_scenario("hospital", 1, tmp_path / "h", records_per_site=40, eval_records=4)
    assert [str(w.message) for w in caught if "encod" in str(w.message)] == []
    dicoms = [pydicom.dcmread(path) for path in (tmp_path / "h" / "site-0").rglob("*.dcm")]
    assert dicoms and all(d.SpecificCharacterSet == "ISO_IR 192" for d in dicoms)
