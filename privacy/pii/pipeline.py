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

from fedvlm.config import PiiSection
from privacy.pii.dicom import deidentified, identifying_values, person_names_in_header, read_dicom
from privacy.pii.images import ImageFilter, metadata_texts
from privacy.pii.normalize import normalize_text
from privacy.pii.report import PiiReport
from privacy.pii.text import KnownTerms, Redaction, TextFilter
from vlm.image_files import is_dicom
from vlm.progress import progress_bar
from vlm.records import METADATA, TEXT_FIELDS, Record

log = logging.getLogger("fedvlm.pii")


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


class PiiFilter:
    """Text, image and DICOM filtering; constructing it fails closed (PiiUnavailable) when any part cannot run."""

    def __init__(self, settings: PiiSection) -> None:
        self.text = TextFilter(settings)
        self.images = ImageFilter(self.text, settings.ocr, settings.face_blur)

    def run(self, records: list[Record], out: Path | None, show_progress: bool = False) -> PiiReport:
        """Filter records into out (None: count only); a record that cannot be filtered is dropped and counted.

        Names found anywhere at the site (text, image metadata, DICOM headers) are redacted everywhere.
        """
        report = PiiReport()
        report.events["records-in"] = len(records)
        sidecars = [self._sidecar(record) for record in records]
        fields = [_texts_of(record) for record in records]
        texts = [normalize_text(text) for pairs in fields for _, text in pairs]
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
            for index, (record, texts_of_record, sidecar) in enumerate(zip(records, per_record, sidecars)):
                try:
                    if sidecar is None:
                        raise Unfilterable("image metadata unreadable")
                    entry = self._record(record, texts_of_record, sidecar, known, index, out, report)
                except Exception as error:  # the record is lost, never trained on unfiltered
                    report.events["records-dropped-unfilterable"] += 1
                    log.warning("record %s dropped: could not be filtered (%s)", record.record_id, type(error).__name__)
                    entry = None
                if entry is not None:
                    report.events["records-out"] += 1
                    if lines is not None:
                        lines.write(json.dumps(entry, ensure_ascii=False) + "\n")
                advance()
        return report

    @staticmethod
    def _sidecar(record: Record) -> Sidecar | None:
        try:
            return read_sidecar(record.image_path)
        except Exception:  # counted as unfilterable when the record comes up
            return None

    def _record(
        self,
        record: Record,
        texts: list[tuple[str, Redaction]],
        sidecar: Sidecar,
        known: KnownTerms,
        index: int,
        out: Path | None,
        report: PiiReport,
    ) -> dict | None:
        for name, redaction in texts:
            report.found(name, redaction.found)
        if any(redaction.drop for _, redaction in texts):
            report.events["records-dropped-by-operator"] += 1
            return None
        file_name = self._image(record.image_path, sidecar, known, index, out, report)
        entry: dict = {"file_name": file_name}
        for name, redaction in texts:
            if name == "choices":
                entry.setdefault("choices", []).append(redaction.text)
            else:
                entry[name] = redaction.text
        entry["attributes"] = record.attributes
        return entry

    def _image(
        self, path: Path, sidecar: Sidecar, known: KnownTerms, index: int, out: Path | None, report: PiiReport
    ) -> str:
        if sidecar.metadata:
            report.events["images-with-metadata"] += 1
            metadata_counts: Counter = Counter()
            for redaction in self.text.redact(list(sidecar.metadata), known):
                metadata_counts.update(redaction.found)
            report.found("image-metadata", metadata_counts)
        if is_dicom(path):
            dataset, pixels = read_dicom(path)
            clean, found = self.images.clean(pixels, known, KnownTerms(sidecar.header_values))
            file_name = f"{index:06d}.dcm"
            if out is not None:
                deidentified(dataset, clean).save_as(out / file_name, enforce_file_format=True)
            report.events["dicom-headers-deidentified"] += 1
        else:
            with Image.open(path) as original:
                image_format = original.format or "PNG"
                original.load()
                clean, found = self.images.clean(original, known)
            file_name = f"{index:06d}{path.suffix.lower() or '.png'}"
            if out is not None:
                clean.save(out / file_name, format=image_format, **({"quality": 95} if image_format == "JPEG" else {}))
        report.events["images-rebuilt"] += 1
        report.events["image-text-boxes"] += found.pop("image-text-boxes", 0)
        report.events["faces-blurred"] += found.pop("faces-blurred", 0)
        report.found("image-text", found)
        return file_name
