"""A rich progress display for the round loop: a bar over rounds and one line per round."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RoundDisplay:
    """Context manager; show(row) prints a round's summary and advances the bar."""

    def __init__(self, total_rounds: int, completed: int) -> None:
        self.console = Console()
        self.progress = Progress(
            TextColumn("[bold]federated rounds"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("rounds", total=total_rounds, completed=completed)

    def __enter__(self) -> RoundDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, row: dict) -> None:
        """Print one round: sites, loss, accuracy, verdict; the largest site ε and the central ε under DP."""
        train = row.get("train") or {}
        loss = f"{train['loss']:.3f}" if "loss" in train else "-"
        verdict = {"accepted": "[green]accepted", "rejected": "[red]rejected", "skipped": "[yellow]skipped"}[
            row["status"]
        ]
        privacy = row.get("privacy") or {}
        spent = [figures["epsilon"] for figures in (privacy.get("sites") or {}).values()]
        epsilons = f"  site ε ≤ {max(spent):.2f}" if spent else ""
        if privacy.get("central"):
            epsilons += f"  central ε {privacy['central']['epsilon']:.2f}"
        refused = f"  {row['refused']} out of budget" if row.get("refused") else ""
        self.progress.console.print(
            f"round {row['round']:>3}  sites {row['participants']}/{row['sampled']}  "
            f"loss {loss:>6}  vqa_accuracy {row['utility']['vqa_accuracy']:.3f}  {verdict}{epsilons}{refused}"
            f"{gate_line(row)}"
        )
        for reason in row.get("site_failures", ()):
            self.progress.console.print(f"  [red]site failed[/] {escape(reason)}", highlight=False, soft_wrap=True)
        if row["round"] > 0:
            self.progress.advance(self.task)


GATE_MARKS = {True: "[green]pass[/]", False: "[red]fail[/]", None: "-"}


def gate_line(row: dict) -> str:
    """Each gate's verdict ('(warn)' when it only warns), then culprits quarantined and sites kept out."""
    parts = [
        f"{name} {GATE_MARKS.get(result.get('passed'), '?')}{' (warn)' if result.get('mode') == 'warn' else ''}"
        for name, result in (row.get("gates") or {}).items()
    ]
    line = f"  gates: {', '.join(parts)}" if parts else ""
    quarantined = row.get("quarantined") or {}
    if quarantined.get("added"):
        line += f"  quarantined {', '.join(quarantined['added'])}"
    if quarantined.get("sites"):
        line += f"  kept out {', '.join(quarantined['sites'])}"
    return line
