"""The client pipeline's filter stage: a site's records pass here after loading and before anything is tokenized.

The PII filter writes a filtered copy of the dataset into the site's own cache, keyed by a hash of the raw
data and the filter settings, so it runs once per site and dataset, not once per round or per process.
Only records loaded from that copy are ever trained on. If the filter cannot run, nothing trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from filelock import FileLock

from privacy.pii.pipeline import PiiFilter
from privacy.pii.report import REPORT_FILE, PiiReport
from privacy.pii.settings import PiiSettings
from vlm.attributes import AttributeSchema
from vlm.base_model import cache_root
from vlm.records import Record, load_dataset, manifest_hash

FILTER_VERSION = "3"  # 3: attributes screened against the declared schema (copies of version 2 may hold any)
COMPLETE = ".complete"


def _dataset_hash(folder: Path, records: list[Record], settings: PiiSettings, schema: AttributeSchema) -> str:
    digest = hashlib.sha256(f"{FILTER_VERSION}\n{settings.model_dump_json()}\n{schema!r}\n".encode())
    if "hash" in {settings.default_operator, *settings.operators.values()}:
        secret = os.environ.get(settings.hash_secret_env, "")
        digest.update(hashlib.sha256(secret.encode()).digest())
    digest.update(manifest_hash(folder, records).encode())
    return digest.hexdigest()


def filtered_copy(
    folder: Path, records: list[Record], settings: PiiSettings, schema: AttributeSchema, cache: Path | None = None
) -> tuple[Path, PiiReport]:
    """The filtered dataset for these records (written on first use into cache, default the fedvlm cache's pii/)
    and the filter's report."""
    target = (cache or cache_root() / "pii") / _dataset_hash(folder, records, settings, schema)[:32]
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / COMPLETE).is_file():
            shutil.rmtree(target, ignore_errors=True)
            report = PiiFilter(settings).run(records, target)
            (target / REPORT_FILE).write_text(json.dumps(report.as_json(), indent=1), encoding="utf-8")
            (target / COMPLETE).write_text(FILTER_VERSION, encoding="utf-8")
    return target, PiiReport.from_json(json.loads((target / REPORT_FILE).read_text(encoding="utf-8")))


def filter_records(
    folder: Path,
    records: list[Record],
    settings: PiiSettings,
    schema: AttributeSchema | None = None,
    cache: Path | None = None,
) -> tuple[list[Record], dict[str, int]]:
    """Records allowed into training, and the counts of what the filter did (never values).

    records were loaded with schema (default: the demo's), so the copy holds declared attributes only; the filtered
    copy lives in cache (see filtered_copy).
    """
    schema = schema or AttributeSchema()
    if not settings.enabled:
        return list(records), {"pii-enabled": 0, **PiiReport().as_metrics()}
    copy, report = filtered_copy(folder, records, settings, schema, cache)
    filtered = load_dataset(copy, schema)[0] if report.events["records-out"] else []
    return [_as_source(record, records) for record in filtered], {"pii-enabled": 1, **report.as_metrics()}


def _as_source(filtered: Record, sources: list[Record]) -> Record:
    """A filtered record under its source record's id (the pipeline names each image by its source's position), so
    that what keys on record ids (the held-out split) does not change with the filter's version or settings."""
    return dataclasses.replace(filtered, record_id=sources[int(filtered.image_path.stem)].record_id)
