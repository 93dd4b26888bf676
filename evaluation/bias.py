"""Bias: accuracy per group (fairlearn MetricFrame) with small cells left out, and counterfactual consistency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import regex
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

from vlm.attributes import DEFAULT_MIN_GROUP_SIZE, suppress_small_cells
from vlm.records import Record


@dataclass(frozen=True)
class GroupAccuracy:
    """Accuracy of each group shown; difference and ratio between groups (None under two groups shown)."""

    by_group: dict[str, float]
    difference: float | None  # largest accuracy minus smallest
    ratio: float | None  # smallest accuracy over largest (nan when every group shown scores 0)


def group_accuracy(
    correct: Sequence[bool], groups: Sequence[str], min_group_size: int = DEFAULT_MIN_GROUP_SIZE
) -> GroupAccuracy:
    """Per-group accuracy of correctness flags; groups are left out as suppress_small_cells leaves them out.

    A group under min_group_size is left out, and with it the next smallest until those left out add up to it,
    so no left-out count can be recovered from the others.
    """
    if len(correct) != len(groups):
        raise ValueError(f"{len(correct)} correctness flags for {len(groups)} group labels")
    cells = {
        group: {"correct": sum(flag for flag, g in zip(correct, groups) if g == group), "total": total}
        for group, total in Counter(groups).items()
    }
    shown = suppress_small_cells({"group": cells}, min_group_size).get("group", {})
    kept = [index for index, group in enumerate(groups) if group in shown]
    if not kept:
        return GroupAccuracy({}, None, None)
    frame = MetricFrame(
        metrics=accuracy_score,
        y_true=[bool(correct[index]) for index in kept],
        y_pred=[True] * len(kept),  # accuracy against "all right" is the fraction right
        sensitive_features=[groups[index] for index in kept],
    )
    by_group = {str(group): float(value) for group, value in frame.by_group.items()}
    if len(by_group) < 2:
        return GroupAccuracy(by_group, None, None)
    return GroupAccuracy(by_group, float(frame.difference()), float(frame.ratio()))


def _same_answer(first: str, second: str) -> bool:
    return " ".join(first.split()).casefold() == " ".join(second.split()).casefold()


def counterfactual_consistency(answer_pairs: Sequence[tuple[str, str]]) -> float:
    """Fraction of pairs (answer as asked, answer with the descriptor swapped) that are identical.

    Identical up to case and runs of whitespace; 1.0 when there is no pair (nothing inconsistent).
    """
    if not answer_pairs:
        return 1.0
    return sum(_same_answer(first, second) for first, second in answer_pairs) / len(answer_pairs)


def swap_descriptors(question: str, swaps: Mapping[str, str]) -> str | None:
    """The question with every descriptor in swaps replaced by its counterpart, both ways, in one pass.

    swaps maps a descriptor to its counterpart ("a 71-year-old woman" -> "a 34-year-old man"); the reverse is
    applied too. Matching is whole-word and case-insensitive, longest descriptor first; a capitalised match gets a
    capitalised counterpart. None when the question holds no descriptor.
    """
    table = {key.casefold(): value for key, value in swaps.items()}
    table.update({value.casefold(): key for key, value in swaps.items()})
    if not table:
        return None
    alternatives = "|".join(regex.escape(key) for key in sorted(table, key=len, reverse=True))
    pattern = regex.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", regex.IGNORECASE)

    def counterpart(match: regex.Match) -> str:
        found, replacement = match.group(), table[match.group().casefold()]
        return replacement[:1].upper() + replacement[1:] if found[:1].isupper() else replacement

    swapped, count = pattern.subn(counterpart, question)
    return swapped if count else None


def counterfactual_pairs(records: Sequence[Record], swaps: Mapping[str, str]) -> list[tuple[int, Record]]:
    """Each multiple-choice record whose question holds a descriptor in swaps: its position, and the record with
    its descriptors swapped (swap_descriptors)."""
    pairs = []
    for position, record in enumerate(records):
        question = swap_descriptors(record.question or "", swaps) if record.choices else None
        if question is not None:
            pairs.append((position, replace(record, question=question)))
    return pairs
