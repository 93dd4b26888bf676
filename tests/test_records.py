import json

import pytest
from PIL import Image

from vlm.records import SKIP_REASONS, DatasetError, load_dataset

GOOD = {"file_name": "a.png", "question": "is there a lesion?", "answer": "yes", "choices": ["yes", "no"]}


def _dataset(folder, lines: list[bytes | dict], images=("a.png",)):
    folder.mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.new("RGB", (8, 8), "red").save(folder / name)
    raw = [line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines]
    (folder / "metadata.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    return folder


def test_valid_record_keeps_fields(tmp_path):
    entry = {**GOOD, "caption": "findings: clear.", "attributes": {"sex": "F"}}
    records, report = load_dataset(_dataset(tmp_path / "s", [entry]))
    assert report.kept == 1 and sum(report.skipped.values()) == 0
    (record,) = records
    assert (record.question, record.answer, record.choices) == ("is there a lesion?", "yes", ("yes", "no"))
    assert record.caption == "findings: clear." and record.attributes == {"sex": "F"}
    assert record.load_image().size == (8, 8)


@pytest.mark.parametrize(
    ("bad_line", "reason", "field"),
    [
        (b"{not json", "malformed-json", None),
        ("caf\u00e9".encode("latin-1") + b'"}', "not-utf8", None),
        (b"[1, 2]", "bad-record", None),
        ({"file_name": "a.png"}, "missing-field", "question"),
        ({"file_name": "a.png", "caption": "   "}, "empty-field", "caption"),
        ({"file_name": "a.png", "question": "q?"}, "missing-field", "answer"),
        ({"file_name": "a.png", "caption": 7}, "bad-field", "caption"),
        ({"caption": "x"}, "bad-field", "file_name"),
        ({"file_name": "../escape.png", "caption": "x"}, "bad-field", "file_name"),
        ({"file_name": "gone.png", "caption": "x"}, "missing-image", "file_name"),
        ({**GOOD, "answer": "maybe"}, "bad-field", "answer"),
        ({**GOOD, "attributes": {"age": 60}}, "bad-field", "attributes"),
        ({**GOOD, "question": "what is <image> here?"}, "special-token", "question"),
        ({"file_name": "a.png", "caption": "x" * 1_000_000}, "text-too-long", "caption"),
    ],
)
def test_bad_line_is_skipped_counted_and_located(tmp_path, bad_line, reason, field):
    folder = _dataset(tmp_path / "s", [GOOD, bad_line, GOOD])
    records, report = load_dataset(folder)
    assert len(records) == 2 and report.skipped[reason] == 1
    (problem,) = report.problems
    assert problem.startswith(f"{folder / 'metadata.jsonl'}:2:")
    if field:
        assert f"'{field}'" in problem


def test_choices_are_compared_stripped(tmp_path):
    records, _ = load_dataset(_dataset(tmp_path / "s", [{**GOOD, "choices": [" yes ", "no"]}]))
    assert records[0].choices == ("yes", "no")


def test_problem_messages_never_contain_values(tmp_path):
    secret = "Jane Doe MRN-123-456"
    folder = _dataset(tmp_path / "s", [GOOD, {"file_name": "a.png", "question": secret}, {"caption": secret}])
    _, report = load_dataset(folder)
    assert len(report.problems) == 2
    assert not any("Jane" in p or "123" in p for p in report.problems)


def test_corrupt_and_truncated_images_are_skipped(tmp_path):
    folder = _dataset(tmp_path / "s", [GOOD, {**GOOD, "file_name": "bad.png"}, {**GOOD, "file_name": "cut.png"}])
    (folder / "bad.png").write_bytes(b"this is not an image")
    Image.new("RGB", (64, 64), "blue").save(folder / "full.png")
    (folder / "cut.png").write_bytes((folder / "full.png").read_bytes()[:100])
    records, report = load_dataset(folder)
    assert len(records) == 1 and report.skipped["corrupt-image"] == 2


def test_huge_image_is_skipped(tmp_path):
    folder = _dataset(tmp_path / "s", [GOOD, {**GOOD, "file_name": "huge.png"}])
    Image.new("1", (20000, 20000)).save(folder / "huge.png")
    records, report = load_dataset(folder)
    assert len(records) == 1 and report.skipped["image-too-large"] == 1


def test_counts_have_fixed_keys(tmp_path):
    _, report = load_dataset(_dataset(tmp_path / "s", [GOOD]))
    assert set(report.as_counts()) == {"kept"} | {f"skipped-{reason}" for reason in SKIP_REASONS}


def test_unusable_datasets_raise_naming_the_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="metadata.jsonl: missing"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no valid record"):
        load_dataset(_dataset(tmp_path / "bad", [b"{oops"]))
