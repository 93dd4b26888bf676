"""The report's sections on utility, gate decisions, privacy and PII, built from metrics rows (counts only)."""

from __future__ import annotations

from audit.html_parts import esc, figure, num, para, section, table
from audit.plots import bias_plot, epsilon_plot, group_plot, utility_plot
from audit.run_record import RunRecord


def group_table(groups: dict) -> str:
    """Correct, total and accuracy per attribute value."""
    rows = []
    for attribute, values in sorted(groups.items()):
        for value, counts in sorted(values.items()):
            correct, total = counts.get("correct"), counts.get("total")
            accuracy = num(correct / total, 3) if isinstance(correct, int) and total else "—"
            rows.append([esc(attribute), esc(value), num(correct), num(total), accuracy])
    return table(["attribute", "value", "correct", "total", "accuracy"], rows)


def utility_section(record: RunRecord) -> str:
    """Accuracy per round (status marked), per-group accuracy at the last round, the bias gate's figures."""
    last = record.last
    groups = last.get("utility", {}).get("groups") or {}
    body = [
        figure(utility_plot(record.rows), "server-eval vqa_accuracy per round (accepted, rejected, skipped)"),
        table(
            ["round", "status", "vqa_accuracy", "correct", "total"],
            [
                [
                    str(row["round"]),
                    esc(row.get("status", "—")),
                    num(row.get("utility", {}).get("vqa_accuracy")),
                    num(row.get("utility", {}).get("correct")),
                    num(row.get("utility", {}).get("total")),
                ]
                for row in record.rows
            ],
        ),
        f"<h3>Per group, round {esc(last.get('round', '—'))} ({esc(last.get('status', 'no rows'))})</h3>",
        figure(group_plot(groups), "accuracy per attribute group at the last round"),
        group_table(groups) if groups else para("No group counts at the last round."),
        "<h3>Bias gate figures per round</h3>",
        figure(bias_plot(record.rows), "the bias gate's between-group difference per round"),
        _bias_table(record.rows),
    ]
    return section("utility", "Utility", "".join(body))


def _bias_table(rows: list[dict]) -> str:
    """The bias gate's figures per round and attribute."""
    lines = []
    for row in rows:
        figures = row.get("gates", {}).get("bias", {}).get("figures") or {}
        for attribute, values in sorted(figures.items()):
            if isinstance(values, dict):
                keys = ("difference", "current_difference", "widening", "standard_error")
                lines.append([str(row["round"]), esc(attribute), *(num(values.get(key)) for key in keys)])
    if not lines:
        return para("The bias gate recorded no figures in this run.")
    return table(["round", "attribute", "difference", "current", "widening", "standard error"], lines)


def _verdict(passed: object) -> str:
    """passed, failed or not judged (None), coloured."""
    if passed is None:
        return '<span class="muted">not judged</span>'
    return '<span class="good">passed</span>' if passed else '<span class="bad">failed</span>'


def _gate_cell(result: dict) -> str:
    """A gate's verdict, mode and reason (or the error it raised)."""
    mode = f" ({esc(result.get('mode', '—'))})"
    if "error" in result:
        return f'<span class="bad">raised {esc(result["error"])}</span>{mode}'
    reason = f": {esc(result['reason'])}" if result.get("reason") else ""
    return f"{_verdict(result.get('passed'))}{mode}{reason}"


def timeline_section(record: RunRecord) -> str:
    """Each round's status, every gate's passed/mode/reason, attributions and quarantines."""
    gates = sorted({name for row in record.rows for name in row.get("gates", {})})
    lines = []
    for row in record.rows:
        attribution = row.get("attribution") or {}
        quarantined = row.get("quarantined") or {}
        status = esc(row.get("status", "—")) + (f": {esc(row['reason'])}" if row.get("reason") else "")
        if row.get("accepted") and attribution.get("suspects"):
            status += f" without {esc(', '.join(attribution['suspects']))} (the full aggregate failed)"
        lines.append(
            [
                str(row["round"]),
                f'<span class="{esc(row.get("status", ""))}">{status}</span>',
                *(_gate_cell(row.get("gates", {}).get(name, {})) for name in gates),
                esc(", ".join(attribution.get("suspects", []))) or "—",
                esc(", ".join(quarantined.get("sites", []))) or "—",
                esc(", ".join(row.get("aggregated_sites", []))) or "—",
            ]
        )
    headers = ["round", "status", *(f"gate {name}" for name in gates), "suspects", "quarantined", "aggregated"]
    body = table(headers, lines, "timeline") + _attribution_tables(record.rows)
    return section("gates", "Gate decisions", body)


def _attribution_tables(rows: list[dict]) -> str:
    """Each attribution's suspects and trials (each under the sites it left out)."""
    parts = []
    for row in rows:
        attribution = row.get("attribution")
        if not attribution:
            continue
        trials = [
            [
                esc(site),
                _verdict(trial.get("passed")),
                num(trial.get("vqa_accuracy")),
                esc(", ".join(trial.get("failed_gates", [])) or "—"),
            ]
            for site, trial in sorted((attribution.get("trials") or {}).items())
        ]
        suspects = ", ".join(attribution.get("suspects", [])) or "none found"
        note = f" ({attribution['reason']})" if attribution.get("reason") else ""
        parts.append(f"<h3>Round {row['round']}: attribution, suspects {esc(suspects)}{esc(note)}</h3>")
        parts.append(table(["left out", "trial", "vqa_accuracy", "failed gates"], trials))
    return "".join(parts)


NO_DP = "No DP: this run recorded no ε (neither DP-SGD at the sites nor central DP); no formal privacy bound applies."


def _ledger_lines(row: dict) -> list[list[str]]:
    """A row's ε per site against its budget, and the central ε, as table lines."""
    privacy = row.get("privacy") or {}
    lines = []
    for site, ledger in sorted((privacy.get("sites") or {}).items()):
        spent = f"ε {num(ledger.get('epsilon'))} of budget {num(ledger.get('budget_epsilon'))}"
        steps, status = num(ledger.get("steps")), esc(ledger.get("status", "—"))
        lines.append([str(row["round"]), esc(site), spent, num(ledger.get("delta")), steps, status])
    central = privacy.get("central") or {}
    if central.get("epsilon") is not None:
        spent = f"ε {num(central['epsilon'])} after {num(central.get('releases'))} releases"
        lines.append([str(row["round"]), "central", spent, num(central.get("delta")), "—", "—"])
    return lines


def privacy_section(record: RunRecord) -> str:
    """ε per site per round against its budget, the central ε, or a clear no-DP line."""
    lines = [line for row in record.rows for line in _ledger_lines(row)]
    if not lines:
        return section("privacy", "Differential privacy", para(NO_DP, "warn"))
    body = figure(epsilon_plot(record.rows), "ε per site per round (dashed: its budget) and the central ε")
    body += table(["round", "who", "ε", "δ", "steps", "status"], lines)
    return section("privacy", "Differential privacy", body)


def pii_section(record: RunRecord) -> str:
    """PII entities found per site, field and entity type: each site's latest report (the same dataset each round)."""
    latest: dict[str, tuple[int, dict]] = {}
    for row in record.rows:
        for site, counts in ((row.get("pii") or {}).get("sites") or {}).items():
            latest[site] = (row["round"], counts)
    if not latest:
        return section("pii", "PII filter", para("No site reported PII counts in this run."))
    sites = sorted(latest)
    keys = sorted({key for _, counts in latest.values() for key in counts})
    lines = [[esc(key.replace("|", " · ")), *(num(latest[site][1].get(key, 0), 12) for site in sites)] for key in keys]
    totals = ["<b>total</b>", *(num(sum(latest[site][1].values()), 12) for site in sites)]
    rounds = ", ".join(f"{site}: round {latest[site][0]}" for site in sites)
    intro = para(
        "Entities the PII filter found and replaced, by field and entity type (counts only; "
        f"each site's latest report, since every round reports the same dataset: {rounds})."
    )
    return section("pii", "PII filter", intro + table(["field · entity", *sites], [*lines, totals]))
