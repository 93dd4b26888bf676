"""The client pipeline's filter stage: every record passes here after loading and before training.

Only records this stage returns are ever tokenized. The PII filter (text, image metadata, OCR,
DICOM) plugs in here; until it lands the stage passes records through and counts them.
"""

from __future__ import annotations

from vlm.records import Record


def filter_records(records: list[Record]) -> tuple[list[Record], dict[str, int]]:
    """Records allowed into training, and counts of what the stage did (never values)."""
    return list(records), {"filter-in": len(records), "filter-kept": len(records)}
