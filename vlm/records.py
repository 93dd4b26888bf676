"""Site datasets (a folder with metadata.jsonl + images): loading with per-record validation."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from PIL import Image

from vlm.attributes import AttributeSchema
from vlm.image_files import NoPixelData, TooManyPixels, read_image

METADATA = "metadata.jsonl"
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_TEXT_CHARS = 4000
MAX_CHOICES = 32
MAX_LINE_BYTES = 16 << 20  # a longer line is skipped unread; shorter ones are parsed and checked field by field
TEXT_FIELDS = ("caption", "question", "answer")
# Placeholders VLM processors expand into image tokens: in record text they would break batching.
SPECIAL_MARKERS = ("<image>", "<fake_token_around_image>", "<global-img>", "<|image_pad|>", "<|vision_start|>")
SKIP_REASONS = (
    "not-utf8",
    "line-too-long",
    "malformed-json",
    "bad-record",
    "bad-field",
    "empty-field",
    "text-too-long",
    "special-token",
    "missing-field",
    "missing-image",
    "image-too-large",
    "corrupt-image",
    "no-pixel-data",
)
ATTRIBUTE_DROPS = ("undeclared", "not-allowed")  # attributes dropped from kept records, counted by kind


class DatasetError(ValueError):
    """The dataset as a whole cannot be used (missing folder, no metadata, no valid record)."""

    def __init__(self, message: str, report: LoadReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Record:
    """One validated record; text fields hold site data and must never be logged."""

    record_id: str
    image_path: Path
    caption: str | None
    question: str | None
    answer: str | None
    choices: tuple[str, ...] | None
    attributes: dict[str, str]

    def load_image(self) -> Image.Image:
        """The record's image as RGB pixels."""
        return read_image(self.image_path).convert("RGB")


@dataclass
class LoadReport:
    """Counts of what loading kept and skipped; problems name file, line and field, never values."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    attributes_dropped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    unlisted: int = 0  # problems beyond the first MAX_PROBLEMS, counted only

    MAX_PROBLEMS = 50

    def note(self, location: str, message: str) -> None:
        """Remember one problem (file, line, field; never a value), up to MAX_PROBLEMS messages."""
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(f"{location}: {message}")
        else:
            self.unlisted += 1

    def skip(self, location: str, reason: str, message: str) -> None:
        """Count one skipped record and remember why."""
        self.skipped[reason] += 1
        self.note(location, message)

    def drop_attributes(self, location: str, undeclared: int, not_allowed: int) -> None:
        """Count attributes left out of a kept record (names and values are never repeated)."""
        self.attributes_dropped.update({"undeclared": undeclared, "not-allowed": not_allowed})
        parts = [f"{undeclared} undeclared name(s)"] * bool(undeclared) + [
            f"{not_allowed} value(s) not declared for their name"
        ] * bool(not_allowed)
        self.note(location, f"field 'attributes': dropped {' and '.join(parts)}")

    def messages(self) -> list[str]:
        """Every remembered problem, plus a line counting those not listed."""
        return self.problems + [f"... and {self.unlisted} more"] * bool(self.unlisted)

    def as_counts(self) -> dict[str, int]:
        """Flat counts for metrics: kept, skipped-<reason>, attribute-<kind>-dropped (fixed keys)."""
        return {
            "kept": self.kept,
            **{f"skipped-{reason}": self.skipped[reason] for reason in SKIP_REASONS},
            **{f"attribute-{kind}-dropped": self.attributes_dropped[kind] for kind in ATTRIBUTE_DROPS},
        }


class RecordError(ValueError):
    """One record is unusable; the message names the field and the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _checked_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError("bad-field", f"field '{name}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RecordError("empty-field", f"field '{name}' is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise RecordError("text-too-long", f"field '{name}' has {len(value)} characters (limit {MAX_TEXT_CHARS})")
    if any(marker in value for marker in SPECIAL_MARKERS):
        raise RecordError("special-token", f"field '{name}' contains an image placeholder token")
    return value.strip()


def _text(entry: dict, name: str) -> str | None:
    value = entry.get(name)
    return None if value is None else _checked_text(value, name)


def _choices(entry: dict, answer: str | None) -> tuple[str, ...] | None:
    choices = entry.get("choices")
    if choices is None:
        return None
    if not isinstance(choices, list) or not choices:
        raise RecordError("bad-field", "field 'choices' must be a non-empty list of strings")
    if len(choices) > MAX_CHOICES:
        raise RecordError("bad-field", f"field 'choices' has {len(choices)} items (limit {MAX_CHOICES})")
    checked = tuple(_checked_text(choice, f"choices[{index}]") for index, choice in enumerate(choices))
    if answer not in checked:
        raise RecordError("bad-field", "field 'answer' is not one of 'choices'")
    return checked


def _image_path(folder: Path, entry: dict) -> Path:
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise RecordError("bad-field", "field 'file_name' is missing or not a string")
    try:
        image_path = (folder / file_name).resolve()
        inside = folder.resolve() in image_path.parents
    except (OSError, ValueError):  # a NUL byte, a symlink loop
        raise RecordError("bad-field", "field 'file_name' is not a usable path") from None
    if not inside:
        raise RecordError("bad-field", "field 'file_name' points outside the dataset folder")
    return image_path


def _check_image(path: Path) -> None:
    try:
        found = path.is_file()
    except OSError:  # a name too long for the file system
        raise RecordError("bad-field", "field 'file_name' is not a usable path") from None
    if not found:
        raise RecordError("missing-image", "field 'file_name': image file not found")
    try:
        read_image(path, MAX_IMAGE_PIXELS)
    except TooManyPixels as error:
        raise RecordError("image-too-large", f"field 'file_name': {error}") from None
    except NoPixelData:
        raise RecordError("no-pixel-data", "field 'file_name': DICOM file has no pixel data") from None
    except Image.DecompressionBombError:
        raise RecordError(
            "image-too-large", "field 'file_name': image exceeds Pillow's decompression-bomb limit"
        ) from None
    except (OSError, SyntaxError, ValueError, AttributeError, pydicom.errors.InvalidDicomError) as error:
        raise RecordError("corrupt-image", f"field 'file_name': unreadable image ({type(error).__name__})") from None


def parse_record(folder: Path, entry: object, record_id: str, schema: AttributeSchema) -> tuple[Record, int, int]:
    """Validate one metadata entry; raises RecordError naming the offending field.

    Returns the record and the counts of its undeclared attributes and of its values not allowed (both dropped).
    """
    if not isinstance(entry, dict):
        raise RecordError("bad-record", "line is not a JSON object")
    image_path = _image_path(folder, entry)
    caption, question, answer = (_text(entry, name) for name in TEXT_FIELDS)
    if (question is None) != (answer is None):
        raise RecordError("missing-field", "fields 'question' and 'answer' must come together")
    if caption is None and question is None:
        raise RecordError("missing-field", "no text field: need 'caption' or 'question' + 'answer'")
    choices = _choices(entry, answer)
    raw_attributes = entry.get("attributes", {})
    if not isinstance(raw_attributes, dict):
        raise RecordError("bad-field", "field 'attributes' must be a JSON object")
    attributes, undeclared, not_allowed = schema.screen(raw_attributes)
    _check_image(image_path)
    record = Record(record_id, image_path, caption, question, answer, choices, attributes)
    return record, undeclared, not_allowed


def _lines(metadata: Path, report: LoadReport):
    """(line number, bytes) of every non-blank line; a line over MAX_LINE_BYTES is skipped and counted unread."""
    with metadata.open("rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                report.skip(f"{metadata}:{number}", "line-too-long", f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if raw.strip():
                yield number, raw


def _entry(raw: bytes, first: bool) -> object:
    """The JSON value of one line; RecordError for anything that is not one (whatever the line holds)."""
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError:
        raise RecordError("not-utf8", "line is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError("malformed-json", f"malformed JSON at column {error.colno}") from None
    except RecursionError:
        raise RecordError("malformed-json", "JSON nested too deeply") from None
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise RecordError("malformed-json", "JSON holds a value out of range") from None


def manifest_hash(folder: Path, records: list[Record]) -> str:
    """SHA-256 of a dataset as loaded: its metadata file's bytes and each loaded record's image bytes, in order."""
    digest = hashlib.sha256((folder / METADATA).read_bytes())
    for record in records:
        digest.update(hashlib.sha256(record.image_path.read_bytes()).digest())
    return digest.hexdigest()


def load_dataset(folder: Path | str, schema: AttributeSchema | None = None) -> tuple[list[Record], LoadReport]:
    """Load and validate every record of a site folder; bad records are skipped and counted.

    Attributes not declared in schema (default: the demo's), or with a value it does not allow, are dropped
    from their record and counted.
    """
    schema = schema or AttributeSchema()
    folder = Path(folder)
    metadata = folder / METADATA
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder does not exist")
    if not metadata.is_file():
        raise DatasetError(f"{metadata}: missing (a dataset folder needs {METADATA} beside its images)")
    report = LoadReport()
    records: list[Record] = []
    for number, raw in _lines(metadata, report):
        location = f"{metadata}:{number}"
        try:
            entry = _entry(raw, first=number == 1)
            record, undeclared, not_allowed = parse_record(folder, entry, f"{folder.name}:{number}", schema)
        except RecordError as error:
            report.skip(location, error.reason, str(error))
            continue
        except Exception as error:  # whatever else a line can provoke skips that line only
            report.skip(location, "bad-record", f"record cannot be used ({type(error).__name__})")
            continue
        if undeclared or not_allowed:
            report.drop_attributes(location, undeclared, not_allowed)
        records.append(record)
    report.kept = len(records)
    if not records:
        raise DatasetError(f"{metadata}: no valid record ({sum(report.skipped.values())} skipped)", report)
    return records, report
