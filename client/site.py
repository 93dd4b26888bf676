"""A site's data and model, loaded once per process and reused across rounds."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

from contract.node_config import NodeConfig
from contract.run_config import RunConfig
from privacy.filter_stage import filter_records
from privacy.pii.settings import PiiSettings
from vlm.attributes import AttributeSchema
from vlm.loading import weights_hash
from vlm.lora import LoraSettings, load_with_lora
from vlm.records import DatasetError, LoadReport, Record, load_dataset, manifest_hash

log = logging.getLogger("fedvlm.site")


@dataclass(frozen=True)
class SiteData:
    """Filtered records split into train and held-out parts, with their decoded images."""

    train: list[Record]
    holdout: list[Record]
    images: dict[str, Image.Image]
    load_report: LoadReport
    filter_counts: dict[str, int]
    manifest: str  # SHA-256 of the raw dataset as loaded (metadata and images), for the audit log

    def counts(self) -> dict[str, int]:
        """Counts for the reply's metrics (no values)."""
        loaded = self.load_report.as_counts()
        return {
            "records-kept": loaded.pop("kept"),
            **{f"records-{key}": value for key, value in loaded.items()},
            **self.filter_counts,
            "records-train": len(self.train),
            "records-holdout": len(self.holdout),
        }


def in_holdout(record_id: str, fraction: float) -> bool:
    """Whether the record with this id (`<folder>:<line>`) is held out of training: a fixed hash of the id."""
    digest = hashlib.sha256(record_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _log_problems(report: LoadReport | None) -> None:
    """Each skipped record's file, line and field (never a value); stays in the site's own log."""
    for problem in report.messages() if report else ():
        log.warning("skipped record: %s", problem)


@cache
def site_data(
    data_path: str,
    holdout_fraction: float,
    pii_settings: PiiSettings,
    schema: AttributeSchema | None = None,
    pii_cache: str | None = None,
) -> SiteData:
    """Load, validate, PII-filter and split a site folder (cached for the life of the process).

    The filtered copy is kept in pii_cache (a deployed site's state-path/pii), else in the fedvlm cache.
    """
    schema = schema or AttributeSchema()
    try:
        records, report = load_dataset(Path(data_path), schema)
    except DatasetError as error:
        _log_problems(error.report)
        raise
    _log_problems(report)
    cache = Path(pii_cache) if pii_cache else None
    clean, filter_counts = filter_records(Path(data_path), records, pii_settings, schema, cache)
    holdout = [r for r in clean if in_holdout(r.record_id, holdout_fraction)]
    train = [r for r in clean if not in_holdout(r.record_id, holdout_fraction)]
    if not train:
        raise ValueError(f"{data_path}: no training record left after the held-out split")
    images = {record.record_id: record.load_image() for record in train}
    return SiteData(train, holdout, images, report, filter_counts, manifest_hash(Path(data_path), records))


def model_dir_for(config: RunConfig, node: NodeConfig) -> Path:
    """The local base-model directory: node-config model-path, else the run config's model."""
    return Path(node.model_path) if node.model_path is not None else config.model.directory()


@cache
def _hash_of(model_dir: str) -> str:
    return weights_hash(model_dir)


def verify_base_model(model_dir: Path, expected_hash: str) -> None:
    """Refuse to train on a base model that differs from the server's (adapters would not fit)."""
    actual = _hash_of(str(model_dir))
    if actual != expected_hash:
        raise ValueError(f"{model_dir}: base model hash {actual[:12]} differs from the server's {expected_hash[:12]}")


@cache
def site_model(model_dir: str, lora: LoraSettings):
    """The base model with LoRA attached, and its processor (cached per process)."""
    return load_with_lora(model_dir, lora)
