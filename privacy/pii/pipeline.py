"""Filter a whole dataset: every text field through Presidio, every image rebuilt and OCR-redacted, DICOM de-identified.

The output is a dataset in the input's format (metadata.jsonl + images) holding only filtered content;
files are renamed by position, since an original file name can itself carry a name or an id.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pydicom
from PIL import Image

from privacy.pii.dicom import deidentified, identifying_values, person_names_in_header, read_dicom
from privacy.pii.images import ImageFilter, ImageText, metadata_texts
from privacy.pii.normalize import normalize_text
from privacy.pii.report import PiiReport
from privacy.pii.settings import PiiSettings
from privacy.pii.text import KnownTerms, Redaction, TextFilter
from vlm.image_files import is_dicom
from vlm.progress import progress_bar
from vlm.records import METADATA, TEXT_FIELDS, Record

log = logging.getLogger("fedvlm.pii")
IMAGE_BATCH = 32  # images read before their burned-in words are analyzed together


class Unfilterable(RuntimeError):
    """A record the filter could not process; it is dropped and counted."""


@dataclass(frozen=True)
class Sidecar:
    """What an image file carries beside its pixels: metadata texts, or a DICOM header's identifying values."""

    metadata: tuple[str, ...] = ()
    header_values: tuple[str, ...] = ()
    header_names: tuple[str, ...] = ()


def read_sidecar(path: Path) -> Sidecar:
    """The image file's non-pixel content that can identify someone."""
    if is_dicom(path):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        return Sidecar(header_values=identifying_values(dataset), header_names=person_names_in_header(dataset))
    with Image.open(path) as image:
        return Sidecar(metadata=tuple(metadata_texts(image)))


def _texts_of(record: Record) -> list[tuple[str, str]]:
    pairs = [(name, getattr(record, name)) for name in TEXT_FIELDS if getattr(record, name) is not None]
    return pairs + [("choices", choice) for choice in record.choices or ()]


@dataclass(frozen=True)
class _Pending:
    """A record whose text is filtered and whose image is read, waiting for its burned-in text analysis."""

    index: int
    record: Record
    texts: list[tuple[str, Redaction]]
    image_text: ImageText
    known: tuple[KnownTerms, ...]
    dicom: pydicom.Dataset | None = None
    image_format: str = "PNG"


class PiiFilter:
    """Text, image and DICOM filtering; constructing it fails closed (PiiUnavailable) when any part cannot run."""

    def __init__(self, settings: PiiSettings) -> None:
        self.text = TextFilter(settings)
        self.images = ImageFilter(self.text, settings.ocr, settings.face_blur)

    def run(self, records: list[Record], out: Path | None, show_progress: bool = False) -> PiiReport:
        """Filter records into out (None: count only); a record that cannot be filtered is dropped and counted.

        Names found anywhere at the site (text, image metadata, DICOM headers) are redacted everywhere; every
        PII value found in a record (its text, metadata, DICOM header) is also looked for in its image's text.
        """
        report = PiiReport()
        report.events["records-in"] = len(records)
        sidecars = [self._sidecar(record) for record in records]
        fields = [_texts_of(record) for record in records]
        normalized = [[normalize_text(text) for _, text in pairs] for pairs in fields]
        texts = [text for record_texts in normalized for text in record_texts]
        metadata = [normalize_text(text) for sidecar in sidecars if sidecar for text in sidecar.metadata]
        names = self.text.person_names(texts + metadata)
        names.update(name for sidecar in sidecars if sidecar for name in sidecar.header_names)
        known = KnownTerms(names)
        redactions = iter(self.text.redact(texts, known))
        per_record = [[(name, next(redactions)) for name, _ in pairs] for pairs in fields]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        bar = progress_bar("PII filter", total=len(records)) if show_progress else nullcontext(lambda: None)
        with bar as advance, (out / METADATA).open("w", encoding="utf-8") if out else nullcontext() as lines:
            for first in range(0, len(records), IMAGE_BATCH):
                batch = range(first, min(first + IMAGE_BATCH, len(records)))
                pending = [
                    self._read(i, records[i], per_record[i], normalized[i], sidecars[i], known, report) for i in batch
                ]
                for entry in self._finish([item for item in pending if item is not None], out, report):
                    report.events["records-out"] += 1
                    if lines is not None:
                        lines.write(json.dumps(entry, ensure_ascii=False) + "\n")
                for _ in batch:
                    advance()
        return report

    @staticmethod
    def _sidecar(record: Record) -> Sidecar | None:
        try:
            return read_sidecar(record.image_path)
        except Exception:  # counted as unfilterable when the record comes up
            return None

    def _read(
        self,
        index: int,
        record: Record,
        texts: list[tuple[str, Redaction]],
        normalized_texts: list[str],
        sidecar: Sidecar | None,
        known: KnownTerms,
        report: PiiReport,
    ) -> _Pending | None:
        """Count the record's text findings and read its image (None: dropped by an operator or unfilterable)."""
        for name, redaction in texts:
            report.found(name, redaction.found)
        if any(redaction.drop for _, redaction in texts):
            report.events["records-dropped-by-operator"] += 1
            return None
        try:
            if sidecar is None:
                raise Unfilterable("image metadata unreadable")
            if sidecar.metadata:
                report.events["images-with-metadata"] += 1
                metadata_counts: Counter = Counter()
                for redaction in self.text.redact(list(sidecar.metadata), known):
                    metadata_counts.update(redaction.found)
                report.found("image-metadata", metadata_counts)
            metadata = [normalize_text(text) for text in sidecar.metadata]
            own = KnownTerms([*self.text.values(normalized_texts + metadata, known), *sidecar.header_values])
            path = record.image_path
            if is_dicom(path):
                dataset, pixels = read_dicom(path)
                return _Pending(index, record, texts, self.images.read(pixels), (known, own), dataset)
            with Image.open(path) as original:
                image_format = original.format or "PNG"
                original.load()
                image_text = self.images.read(original)
            return _Pending(index, record, texts, image_text, (known, own), None, image_format)
        except Exception as error:
            self._unfilterable(record, error, report)
            return None

    def _finish(self, pending: list[_Pending], out: Path | None, report: PiiReport) -> list[dict]:
        """Redact the burned-in text of records read, write their images; their entries in metadata.jsonl."""
        try:
            cleaned = self.images.redact([(item.image_text, item.known) for item in pending])
        except Exception as error:
            for item in pending:
                self._unfilterable(item.record, error, report)
            return []
        entries = []
        for item, (clean, found) in zip(pending, cleaned):
            try:
                file_name = self._write(item, clean, out)
            except Exception as error:
                self._unfilterable(item.record, error, report)
                continue
            if item.dicom is not None:
                report.events["dicom-headers-deidentified"] += 1
            report.events["images-rebuilt"] += 1
            report.events["image-text-boxes"] += found.pop("image-text-boxes", 0)
            report.events["faces-blurred"] += found.pop("faces-blurred", 0)
            report.found("image-text", found)
            entry: dict = {"file_name": file_name}
            for name, redaction in item.texts:
                if name == "choices":
                    entry.setdefault("choices", []).append(redaction.text)
                else:
                    entry[name] = redaction.text
            entry["attributes"] = item.record.attributes
            entries.append(entry)
        return entries

    @staticmethod
    def _write(item: _Pending, clean: Image.Image, out: Path | None) -> str:
        """Save the filtered image (DICOM with its de-identified header) under a name given by position."""
        if item.dicom is not None:
            file_name = f"{item.index:06d}.dcm"
            if out is not None:
                deidentified(item.dicom, clean).save_as(out / file_name, enforce_file_format=True)
            return file_name
        file_name = f"{item.index:06d}{item.record.image_path.suffix.lower() or '.png'}"
        if out is not None:
            options = {"quality": 95} if item.image_format == "JPEG" else {}
            clean.save(out / file_name, format=item.image_format, **options)
        return file_name

    @staticmethod
    def _unfilterable(record: Record, error: Exception, report: PiiReport) -> None:
        report.events["records-dropped-unfilterable"] += 1  # the record is lost, never trained on unfiltered
        log.warning("record %s dropped: could not be filtered (%s)", record.record_id, type(error).__name__)
