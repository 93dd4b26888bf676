"""`report.html`: a self-contained HTML report of one run folder, for an auditor who holds just that folder.

Built only from metrics.jsonl, config.toml, environment.json, federation_id and audit.jsonl (counts, figures and
hashes, never a record's content); figures are embedded PNG data URIs; no script, no external resource.
"""

from __future__ import annotations

from pathlib import Path

from audit.html_parts import esc, para, section, table
from audit.model_card import model_card_section
from audit.report_sections import pii_section, privacy_section, timeline_section, utility_section
from audit.run_record import RunRecord, load_run
from storage.durable import replace_file

REPORT_NAME = "report.html"

STYLE = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
img{max-width:100%}
.banner{padding:.6em 1em;font-weight:bold;font-size:1.1em;margin:.4em 0}
.ok{background:#dff5e1;border-left:6px solid #2e7d32}
.fail{background:#fde2e2;border-left:6px solid #c62828}
.good,.accepted{color:#2e7d32}
.bad,.rejected{color:#c62828;font-weight:bold}
.muted,.skipped{color:#777}
.warn{color:#b26a00;font-weight:bold}
.note{color:#777;font-style:italic}
"""


def _banners(record: RunRecord) -> str:
    """The audit verdict and the run's completeness, at the top of the page."""
    audit = record.audit
    verified = (
        f'<div class="banner ok">Audit log: verified ({esc(audit.message)})</div>'
        if audit.verified
        else f'<div class="banner fail">Audit log: FAILED: {esc(audit.message)}</div>'
    )
    if audit.complete:
        return verified + '<div class="banner ok">Run: complete (the audit log ends with run-end)</div>'
    why = "no run-end entry in the audit log" if audit.verified else "the audit log did not verify"
    last = f"; the metrics stop at round {record.last['round']}" if record.rows else "; no metrics rows"
    return (
        verified + f'<div class="banner fail">Run: INCOMPLETE ({esc(why)}{esc(last)}). Reported with what exists.</div>'
    )


def audit_section(record: RunRecord) -> str:
    """The audit log's verdict, the run's id and its base-model and environment hashes."""
    audit = record.audit
    start = audit.run_start
    code = start.get("code") or {}
    rows = [
        ["audit log", "verified" if audit.verified else f"FAILED: {audit.message}"],
        ["run", "complete" if audit.complete else "INCOMPLETE"],
        ["entries", f"{len(audit.entries)} ({sum(e['kind'] == 'round' for e in audit.entries)} rounds)"],
        ["files checked", str(audit.files_checked)],
        ["signatures", "present (check them with fedvlm audit verify --public-key)" if audit.signed else "none"],
        ["run id", record.run_id or "—"],
        ["base model hash", start.get("base_model_hash") or record.environment.get("base_model_hash", "—")],
        ["environment hash", record.environment.get("hash", "—")],
        ["environment.json SHA-256 (run-start)", start.get("environment_sha256", "—")],
        ["config.toml SHA-256 (run-start)", start.get("config_sha256", "—")],
        ["code", ", ".join(f"{key} {value}" for key, value in sorted(code.items())) or "—"],
    ]
    body = table(["item", "value"], [[esc(key), esc(value)] for key, value in rows])
    if record.problems:
        body += para("Missing or unreadable in the run folder: " + "; ".join(record.problems), "warn")
    return section("audit", "Audit status", body)


def build_report(record: RunRecord) -> str:
    """The report's HTML for a loaded run folder."""
    title = f"fedvlm run report: {record.run_id or record.root.name}"
    body = "".join(
        [
            f"<h1>{esc(title)}</h1>",
            _banners(record),
            audit_section(record),
            utility_section(record),
            timeline_section(record),
            privacy_section(record),
            pii_section(record),
            model_card_section(record),
        ]
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_report(root: Path, out: Path | None = None) -> tuple[Path, RunRecord]:
    """Write the report of the run folder at root (default root/report.html) whole; its path and what it read."""
    record = load_run(Path(root))
    target = Path(out) if out is not None else record.root / REPORT_NAME
    replace_file(target, build_report(record))
    return target, record
