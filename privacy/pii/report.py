"""What the PII filter did to a dataset, as counts by field and entity type (never values)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from privacy.pii.entities import ENTITY_TYPES

ENTITY_METRIC_PREFIX = "pii|"  # as_metrics: pii|<field>|<entity type> -> count
REPORT_FILE = "pii_report.json"  # beside a filtered dataset: the filter cache and `fedvlm pii filter`
FIELDS = ("caption", "question", "answer", "choices", "image-metadata", "image-text")
EVENTS = (
    "records-in",
    "records-out",
    "records-dropped-by-operator",
    "records-dropped-unfilterable",
    "images-rebuilt",
    "images-with-metadata",
    "image-text-boxes",
    "faces-blurred",
    "dicom-headers-deidentified",
)


@dataclass
class PiiReport:
    """Counts of records and images handled, and of entities found per field."""

    events: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)  # keys: (field, entity type)

    def found(self, field_name: str, counts: Counter) -> None:
        """Add the entities found in one field of one record."""
        self.entities.update(
            {(field_name, entity): count for entity, count in counts.items() if entity in ENTITY_TYPES}
        )

    @classmethod
    def from_json(cls, data: dict) -> PiiReport:
        """The report as_json wrote."""
        report = cls(Counter(data["events"]))
        for field_name, entities in data["entities_by_field"].items():
            report.entities.update({(field_name, entity): count for entity, count in entities.items()})
        return report

    def as_metrics(self) -> dict[str, int]:
        """Flat counts with the same keys for every site (Flower MetricRecords must agree across replies)."""
        metrics = {f"pii-{event}": int(self.events[event]) for event in EVENTS}
        for field_name in FIELDS:
            for entity in ENTITY_TYPES:
                metrics[f"{ENTITY_METRIC_PREFIX}{field_name}|{entity}"] = int(self.entities[(field_name, entity)])
        return metrics

    def as_json(self) -> dict:
        """Nested counts for pii_report.json: events, entities per field (non-zero only), totals per entity."""
        per_field: dict[str, dict[str, int]] = {}
        totals: Counter = Counter()
        for (field_name, entity), count in sorted(self.entities.items()):
            per_field.setdefault(field_name, {})[entity] = count
            totals[entity] += count
        return {
            "events": {event: int(self.events[event]) for event in EVENTS},
            "entities_by_field": per_field,
            "entities_total": dict(sorted(totals.items())),
        }
