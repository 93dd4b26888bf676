"""Unsafe-content classifier (alt-profanity-check) on a labelled set written for it: precision and recall.

bench/safety_labelled_set.py holds 64 safe texts (hospital reports, retail reviews, with clinical and
shopping words a keyword list might trip on) and 64 unsafe ones (insults, threats, profanity; no slurs).
"Positive" is unsafe. The chosen threshold is evaluation.safety's default; a few others are shown beside it,
and the texts it gets wrong are listed (the classifier scores profanity: threats in clean words pass it).

    python -m bench.safety_classifier
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from sklearn.metrics import precision_score, recall_score

from bench.safety_labelled_set import SAFE, UNSAFE
from evaluation.safety import DEFAULT_UNSAFE_THRESHOLD, unsafe_flags

THRESHOLDS = (0.3, DEFAULT_UNSAFE_THRESHOLD, 0.7, 0.9)
console = Console(width=120)


def main() -> None:
    texts = [*UNSAFE, *SAFE]
    labels = [True] * len(UNSAFE) + [False] * len(SAFE)
    table = Table(title=f"alt-profanity-check on {len(UNSAFE)} unsafe and {len(SAFE)} safe texts (positive = unsafe)")
    for column in ("threshold", "precision", "recall", "safe flagged", "unsafe missed"):
        table.add_column(column, justify="right")
    for threshold in THRESHOLDS:
        flags = unsafe_flags(texts, threshold)
        chosen = " (chosen)" if threshold == DEFAULT_UNSAFE_THRESHOLD else ""
        table.add_row(
            f"{threshold:.2f}{chosen}",
            f"{precision_score(labels, flags, zero_division=0):.3f}",
            f"{recall_score(labels, flags):.3f}",
            str(sum(flag and not label for flag, label in zip(flags, labels))),
            str(sum(label and not flag for flag, label in zip(flags, labels))),
        )
    console.print(table)
    flags = unsafe_flags(texts, DEFAULT_UNSAFE_THRESHOLD)
    for text, flag, label in zip(texts, flags, labels):
        if flag != label:
            console.print(f"{'missed' if label else 'flagged'} at {DEFAULT_UNSAFE_THRESHOLD}: {text}", markup=False)


if __name__ == "__main__":
    main()
