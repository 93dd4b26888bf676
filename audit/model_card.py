"""The report's model card: intended use, sites, data, privacy guarantees, results by group, limitations."""

from __future__ import annotations

from audit.html_parts import esc, num, para, section, table
from audit.report_sections import group_table
from audit.run_record import RunRecord

DP_KEYS = ("target_epsilon", "budget_epsilon", "noise_multiplier", "delta", "max_grad_norm", "accountant")
CENTRAL_KEYS = ("clipping", "adaptive", "noise_multiplier", "clipping_norm", "delta")


def base_model(record: RunRecord) -> str:
    """The configured base model: its local path, or the built-in preset."""
    path = record.setting("model", "path", "")
    return f"the local model {path}" if path else f"the built-in '{record.setting('model', 'preset', 'tiny')}' preset"


def site_names(record: RunRecord) -> list[str]:
    """Every site any row names (aggregated, PII, privacy, updates, attribution trials)."""
    names: set[str] = set()
    for row in record.rows:
        names.update(row.get("aggregated_sites") or [])
        names.update(((row.get("pii") or {}).get("sites") or {}).keys())
        names.update(((row.get("privacy") or {}).get("sites") or {}).keys())
        names.update((row.get("update_hashes") or {}).keys())
        for left_out in (row.get("attribution") or {}).get("trials") or {}:
            names.update(left_out.split(","))  # a trial that left out several sites names them joined by commas
    return sorted(names)


def _data(record: RunRecord) -> str:
    """The data's source and the last training round's record counts."""
    root = record.setting("data", "root", "")
    source = (
        f"the data under data.root = {root}"
        if root
        else f"synthetic '{record.setting('data', 'scenario', '?')}' scenario data, "
        f"{num(record.setting('data', 'records_per_site'))} records per site, "
        f"{num(record.setting('data', 'eval_records'))} server-eval records"
    )
    trained = next((row for row in reversed(record.rows) if row.get("train")), {})
    counts = {key: value for key, value in sorted((trained.get("train", {}).get("counts") or {}).items()) if value}
    lines = [[esc(key), num(value, 12)] for key, value in counts.items()]
    intro = para(f"Trained on {source}.")
    if not lines:
        return intro + para("No round recorded training counts.")
    note = para(f"Record counts of round {trained['round']}, summed over the sites that trained in it (train.counts).")
    return intro + note + table(["count", "value"], lines)


def _settings(record: RunRecord, section_name: str, keys: tuple[str, ...]) -> str:
    """`key = value` for each of keys set in the config section."""
    values = [
        f"{key} = {record.setting(section_name, key)}" for key in keys if record.setting(section_name, key) is not None
    ]
    return ", ".join(values)


def _privacy(record: RunRecord) -> str:
    """The PII filter, DP settings and the last round's ε, as a list."""
    pii = "on" if record.setting("privacy.pii", "enabled", False) else "OFF"
    operator = record.setting("privacy.pii", "default_operator", "—")
    items = [f"PII filter: {pii} (default operator {operator}, OCR {record.setting('privacy.pii', 'ocr', '—')})."]
    if record.setting("privacy.dp", "enabled", False):
        items.append(f"DP-SGD at every site: {_settings(record, 'privacy.dp', DP_KEYS)}.")
    else:
        items.append("DP-SGD at the sites: off.")
    if record.setting("privacy.central", "enabled", False):
        items.append(f"Central DP of the aggregate: {_settings(record, 'privacy.central', CENTRAL_KEYS)}.")
    else:
        items.append("Central DP: off.")
    ledgers = (record.last.get("privacy") or {}).get("sites") or {}
    for site, ledger in sorted(ledgers.items()):
        items.append(f"{site}: ε {num(ledger.get('epsilon'))} of budget {num(ledger.get('budget_epsilon'))} spent.")
    central = (record.last.get("privacy") or {}).get("central") or {}
    if central.get("epsilon") is not None:
        items.append(f"Central ε {num(central['epsilon'])} after {num(central.get('releases'))} releases.")
    if not ledgers and central.get("epsilon") is None:
        items.append("No DP figures at the last round: no formal privacy bound on what the adapter reveals.")
    return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def _results(record: RunRecord) -> str:
    """The delivered adapter's accuracy, by group, on server-eval and the sites' held-out splits."""
    accepted = record.last_accepted
    if not accepted:
        return para("No accepted round: no results.")
    utility = accepted.get("utility", {})
    parts = [
        para(
            f"Server-eval vqa_accuracy of the delivered adapter (round {accepted['round']}): "
            f"{num(utility.get('vqa_accuracy'))} ({num(utility.get('correct'))} of {num(utility.get('total'))})."
        )
    ]
    if utility.get("groups"):
        parts.append(group_table(utility["groups"]))
    local = record.last.get("site_evaluation") or {}
    if local.get("groups"):
        parts.append(
            para(f"Sites' held-out splits ({num(local.get('sites'))} sites): {num(local.get('vqa_accuracy'))}.")
        )
        parts.append(group_table(local["groups"]))
    return "".join(parts)


def _limitations(record: RunRecord) -> str:
    """What the figures do not show, as a list."""
    total = record.last_accepted.get("utility", {}).get("total")
    items = [
        f"Evaluated on {num(total)} server-eval questions: small groups give wide error bars.",
        "Group counts below data.min_group_size are suppressed at the sites; such groups are not reported.",
        "Short-answer VQA accuracy only; free-text generation quality and calibration are not measured.",
    ]
    if not record.setting("data", "root", ""):
        items.append("Trained and evaluated on synthetic data: figures say nothing about real patients or customers.")
    if not record.setting("privacy.dp", "enabled", False) and not record.setting("privacy.central", "enabled", False):
        items.append("Without DP, the adapter may memorize training records that the PII filter let through.")
    if not record.audit.complete:
        items.append("The run is INCOMPLETE or its audit log failed: the figures may not describe a finished run.")
    return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def model_card_section(record: RunRecord) -> str:
    """The model card, from config, metrics and the run's id and hashes."""
    named = ", ".join(site_names(record)) or "none"
    base_hash = record.audit.run_start.get("base_model_hash") or record.environment.get("base_model_hash", "—")
    parts = [
        "<h3>Intended use</h3>",
        para(
            f"Research on, and LoRA fine-tuning of, {base_model(record)} (weights SHA-256 {base_hash}) for the "
            f"federation's task: visual question answering on {record.setting('data', 'scenario', '?')} image-text "
            "records. Not for clinical decisions, nor any decision about a person."
        ),
        "<h3>Sites</h3>",
        para(f"{num(record.setting('federation', 'sites'))} sites configured; the metrics name: {named}."),
        "<h3>Data</h3>",
        _data(record),
        "<h3>Privacy guarantees</h3>",
        _privacy(record),
        "<h3>Evaluation results by group</h3>",
        _results(record),
        "<h3>Limitations</h3>",
        _limitations(record),
    ]
    return section("model-card", "Model card", "".join(parts))
