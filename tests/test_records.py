import json

import pytest
from PIL import Image

from vlm.attributes import AttributeSchema
from vlm.records import ATTRIBUTE_DROPS, MAX_LINE_BYTES, SKIP_REASONS, DatasetError, load_dataset

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
        ({**GOOD, "attributes": ["F"]}, "bad-field", "attributes"),
        ({**GOOD, "question": "what is <image> here?"}, "special-token", "question"),
        ({"file_name": "a.png", "caption": "x" * 1_000_000}, "text-too-long", "caption"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed-json", None),  # RecursionError in the parser
        (b'{"file_name": "a.png", "caption": "x", "n": ' + b"7" * 5000 + b"}", "malformed-json", None),
        (b'{"file_name": "a.png", "caption": "x", "pad": "' + b"y" * MAX_LINE_BYTES + b'"}', "line-too-long", None),
        ({"file_name": "a\u0000.png", "caption": "x"}, "bad-field", "file_name"),
        ({"file_name": "a" * 5000 + ".png", "caption": "x"}, "bad-field", "file_name"),
        ({**GOOD, "choices": ["yes", "no <image>"]}, "special-token", "choices[1]"),
        ({**GOOD, "choices": ["yes", "n" * 5000]}, "text-too-long", "choices[1]"),
        ({**GOOD, "choices": ["yes", ""]}, "empty-field", "choices[1]"),
        ({**GOOD, "choices": ["yes"] + [f"c{i}" for i in range(40)]}, "bad-field", "choices"),
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
    assert set(report.as_counts()) == {"kept"} | {f"skipped-{reason}" for reason in SKIP_REASONS} | {
        f"attribute-{kind}-dropped" for kind in ATTRIBUTE_DROPS
    }


def test_unusable_datasets_raise_naming_the_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="metadata.jsonl: missing"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no valid record"):
        load_dataset(_dataset(tmp_path / "bad", [b"{oops"]))


def test_a_byte_order_mark_opens_the_file_without_losing_its_first_record(tmp_path):
    folder = _dataset(tmp_path / "s", [GOOD, GOOD])
    metadata = folder / "metadata.jsonl"
    metadata.write_bytes(b"\xef\xbb\xbf" + metadata.read_bytes())
    records, report = load_dataset(folder)
    assert len(records) == 2 and sum(report.skipped.values()) == 0


def test_undeclared_attributes_and_values_are_dropped_counted_and_never_named(tmp_path):
    leaky = {"sex": "F", "age_band": "Jane Doe", "patient_name": "Jane Doe", "mrn": "MRN-123-456"}
    folder = _dataset(tmp_path / "s", [GOOD, {**GOOD, "attributes": leaky}, {**GOOD, "attributes": {"age_band": 63}}])
    records, report = load_dataset(folder)
    assert [record.attributes for record in records] == [{}, {"sex": "F"}, {"age_band": "60-79"}]
    counts = report.as_counts()
    assert (counts["attribute-undeclared-dropped"], counts["attribute-not-allowed-dropped"]) == (2, 1)
    (problem,) = report.problems
    assert problem.startswith(f"{folder / 'metadata.jsonl'}:2:") and "'attributes'" in problem
    assert not any(word in problem for word in ("Jane", "123", "patient_name", "mrn"))


def test_declared_schema_decides_what_is_kept(tmp_path):
    entry = {**GOOD, "attributes": {"site_type": "rural", "sex": "F", "age_band": "17"}}
    schema = AttributeSchema.from_mapping({"site_type": ["rural", "urban"], "age_band": ["18-64", "65+"]})
    (record,), report = load_dataset(_dataset(tmp_path / "s", [entry]), schema)
    assert record.attributes == {"site_type": "rural"} and report.attributes_dropped == {
        "undeclared": 1,
        "not-allowed": 1,
    }


def test_a_dataset_without_valid_records_keeps_its_reasons(tmp_path):
    folder = _dataset(tmp_path / "s", [b"{oops", {"caption": "x"}])
    with pytest.raises(DatasetError) as error:
        load_dataset(folder)
    assert [problem.split(": ", 1)[0] for problem in error.value.report.problems] == [
        f"{folder / 'metadata.jsonl'}:1",
        f"{folder / 'metadata.jsonl'}:2",
    ]
