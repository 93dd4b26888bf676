"""Site datasets (a folder with metadata.jsonl + images): loading with per-record validation."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from PIL import Image

from vlm.image_files import NoPixelData, TooManyPixels, read_image

METADATA = "metadata.jsonl"
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_TEXT_CHARS = 4000
TEXT_FIELDS = ("caption", "question", "answer")
# Placeholders VLM processors expand into image tokens: in record text they would break batching.
SPECIAL_MARKERS = ("<image>", "<fake_token_around_image>", "<global-img>", "<|image_pad|>", "<|vision_start|>")
SKIP_REASONS = (
    "not-utf8",
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


class DatasetError(ValueError):
    """The dataset as a whole cannot be used (missing folder, no metadata, no valid record)."""


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
    problems: list[str] = field(default_factory=list)

    def skip(self, location: str, reason: str, message: str) -> None:
        """Count one skipped record and remember why (up to 50 messages)."""
        self.skipped[reason] += 1
        if len(self.problems) < 50:
            self.problems.append(f"{location}: {message}")

    def as_counts(self) -> dict[str, int]:
        """Flat counts for metrics: kept and skipped-<reason> for every known reason (fixed keys)."""
        return {"kept": self.kept, **{f"skipped-{reason}": self.skipped[reason] for reason in SKIP_REASONS}}


class RecordError(ValueError):
    """One record is unusable; the message names the field and the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _text(entry: dict, name: str) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError("bad-field", f"field '{name}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RecordError("empty-field", f"field '{name}' is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise RecordError("text-too-long", f"field '{name}' has {len(value)} characters (limit {MAX_TEXT_CHARS})")
    if any(marker in value for marker in SPECIAL_MARKERS):
        raise RecordError("special-token", f"field '{name}' contains an image placeholder token")
    return value.strip()


def _check_image(path: Path) -> None:
    if not path.is_file():
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


def parse_record(folder: Path, entry: object, record_id: str) -> Record:
    """Validate one metadata entry; raises RecordError naming the offending field."""
    if not isinstance(entry, dict):
        raise RecordError("bad-record", "line is not a JSON object")
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise RecordError("bad-field", "field 'file_name' is missing or not a string")
    image_path = (folder / file_name).resolve()
    if folder.resolve() not in image_path.parents:
        raise RecordError("bad-field", "field 'file_name' points outside the dataset folder")
    caption, question, answer = (_text(entry, name) for name in TEXT_FIELDS)
    if (question is None) != (answer is None):
        raise RecordError("missing-field", "fields 'question' and 'answer' must come together")
    if caption is None and question is None:
        raise RecordError("missing-field", "no text field: need 'caption' or 'question' + 'answer'")
    choices = entry.get("choices")
    if choices is not None:
        if not (isinstance(choices, list) and choices and all(isinstance(c, str) and c.strip() for c in choices)):
            raise RecordError("bad-field", "field 'choices' must be a non-empty list of strings")
        choices = [choice.strip() for choice in choices]
        if answer not in choices:
            raise RecordError("bad-field", "field 'answer' is not one of 'choices'")
    attributes = entry.get("attributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise RecordError("bad-field", "field 'attributes' must map names to strings")
    _check_image(image_path)
    return Record(
        record_id=record_id,
        image_path=image_path,
        caption=caption,
        question=question,
        answer=answer,
        choices=tuple(choices) if choices else None,
        attributes=dict(attributes),
    )


def load_dataset(folder: Path | str) -> tuple[list[Record], LoadReport]:
    """Load and validate every record of a site folder; bad records are skipped and counted."""
    folder = Path(folder)
    metadata = folder / METADATA
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder does not exist")
    if not metadata.is_file():
        raise DatasetError(f"{metadata}: missing (a dataset folder needs {METADATA} beside its images)")
    report = LoadReport()
    records: list[Record] = []
    with metadata.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            location = f"{metadata}:{number}"
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                report.skip(location, "not-utf8", "line is not valid UTF-8")
                continue
            except json.JSONDecodeError as error:
                report.skip(location, "malformed-json", f"malformed JSON at column {error.colno}")
                continue
            try:
                records.append(parse_record(folder, entry, record_id=f"{folder.name}:{number}"))
            except RecordError as error:
                report.skip(location, error.reason, str(error))
    report.kept = len(records)
    if not records:
        raise DatasetError(f"{metadata}: no valid record ({sum(report.skipped.values())} skipped)")
    return records, report
