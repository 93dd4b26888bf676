"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG data URIs (None: nothing to plot)."""

from __future__ import annotations

import base64
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

STATUS_MARKERS = {"accepted": ("o", "tab:green"), "rejected": ("X", "tab:red"), "skipped": ("s", "tab:gray")}


def _data_uri(figure: Figure) -> str:
    """The figure as a base64 PNG data URI."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _axes(title: str, ylabel: str, rounds: bool = True) -> tuple[Figure, object]:
    """A figure with one titled axes; rounds: x is the round number (integer ticks)."""
    figure = Figure(figsize=(8, 3.6))
    axes = figure.add_subplot()
    if rounds:
        axes.set_xlabel("round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _number(value: object) -> bool:
    """Whether value is a real number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def utility_plot(rows: list[dict]) -> str | None:
    """Server-eval vqa_accuracy per round, each point marked by the round's status."""
    points = [(row["round"], row.get("utility", {}).get("vqa_accuracy"), row.get("status")) for row in rows]
    points = [(x, y, status) for x, y, status in points if _number(y)]
    if not points:
        return None
    figure, axes = _axes("Server-eval VQA accuracy per round", "vqa_accuracy")
    axes.plot([x for x, _, _ in points], [y for _, y, _ in points], color="0.6", linewidth=1)
    for status, (marker, colour) in STATUS_MARKERS.items():
        chosen = [(x, y) for x, y, s in points if s == status]
        if chosen:
            axes.scatter(*zip(*chosen), marker=marker, color=colour, s=50, label=status, zorder=3)
    axes.legend(loc="lower right")
    return _data_uri(figure)


def group_plot(groups: dict) -> str | None:
    """Accuracy per attribute value (correct / total), one bar each, attributes side by side."""
    bars = [
        (f"{attribute}={value}", counts["correct"] / counts["total"])
        for attribute, values in sorted(groups.items())
        for value, counts in sorted(values.items())
        if isinstance(counts, dict) and _number(counts.get("correct")) and counts.get("total")
    ]
    if not bars:
        return None
    figure, axes = _axes("Accuracy per group", "accuracy", rounds=False)
    axes.bar([label for label, _ in bars], [accuracy for _, accuracy in bars], color="tab:blue")
    axes.set_ylim(0, 1)
    axes.tick_params(axis="x", labelrotation=30)
    return _data_uri(figure)


def bias_plot(rows: list[dict]) -> str | None:
    """The bias gate's between-group accuracy difference per round, one line per attribute."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        figures = row.get("gates", {}).get("bias", {}).get("figures") or {}
        for attribute, values in sorted(figures.items()):
            if isinstance(values, dict) and _number(values.get("difference")):
                lines.setdefault(attribute, []).append((row["round"], values["difference"]))
    if not lines:
        return None
    figure, axes = _axes("Bias gate: largest between-group accuracy difference", "difference")
    for attribute, points in lines.items():
        axes.plot(*zip(*points), marker="o", label=attribute)
    axes.legend(loc="upper right")
    return _data_uri(figure)


def epsilon_plot(rows: list[dict]) -> str | None:
    """Each site's ε per round with its budget (dashed), and the central ε when present."""
    spent: dict[str, list[tuple[int, float]]] = {}
    budgets: dict[str, float] = {}
    for row in rows:
        privacy = row.get("privacy") or {}
        for site, ledger in sorted((privacy.get("sites") or {}).items()):
            if _number(ledger.get("epsilon")):
                spent.setdefault(site, []).append((row["round"], ledger["epsilon"]))
            if _number(ledger.get("budget_epsilon")):
                budgets[site] = ledger["budget_epsilon"]
        central = privacy.get("central") or {}
        if _number(central.get("epsilon")):
            spent.setdefault("central", []).append((row["round"], central["epsilon"]))
    if not spent:
        return None
    figure, axes = _axes("Privacy: ε spent per round", "ε")
    for name, points in spent.items():
        line = axes.plot(*zip(*points), marker="o", label=name)[0]
        if name in budgets:
            axes.axhline(budgets[name], linestyle="--", color=line.get_color(), label=f"{name} budget")
    axes.legend(loc="upper left", fontsize="small")
    return _data_uri(figure)
