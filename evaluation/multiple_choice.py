"""MMBench CircularEval: a question is right only if the model picks its answer under every rotation of its options.

Rotation r lists the options shifted left by r (ABCD, BCDA, CDAB, DABC), so the answer at index a of the
original list sits at position (a - r) mod n in rotation r.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from evaluation.utility import pair_scores
from vlm.collate import TextPair
from vlm.records import Record


def rotation(options: Sequence[str], shift: int) -> tuple[str, ...]:
    """The options shifted left by shift."""
    return (*options[shift:], *options[:shift])


def circular_hit(picks: Sequence[int], answer_index: int) -> bool:
    """Right under every rotation; picks[r] is the position picked in rotation r, one pick per option."""
    n = len(picks)
    return n > 0 and all(pick == (answer_index - shift) % n for shift, pick in enumerate(picks))


def circular_accuracy(picks: Sequence[Sequence[int]], answers: Sequence[int]) -> float:
    """Fraction of questions right under every rotation (0 when there is none)."""
    if len(picks) != len(answers):
        raise ValueError(f"{len(picks)} pick lists for {len(answers)} answers")
    return sum(circular_hit(p, a) for p, a in zip(picks, answers)) / len(answers) if answers else 0.0


def options_prompt(question: str, options: Sequence[str]) -> str:
    """The question with its options listed in the order given."""
    listed = " ".join(f"{position + 1}. {option}" for position, option in enumerate(options))
    return f"question: {question} options: {listed}"


@dataclass(frozen=True)
class CircularResult:
    """Per multiple-choice record: the position picked in each rotation, and the answer's index among its options."""

    picks: list[list[int]]
    answers: list[int]

    @property
    def accuracy(self) -> float:
        """CircularEval accuracy of these picks."""
        return circular_accuracy(self.picks, self.answers)


def _rotated_pairs(record: Record) -> Iterator[TextPair]:
    image = record.load_image()
    for shift in range(len(record.choices)):
        rotated = rotation(record.choices, shift)
        prompt = options_prompt(record.question, rotated)
        yield from (TextPair(image, prompt, option) for option in rotated)


def circular_eval(model, processor, records: list[Record], batch_size: int = 32) -> CircularResult:
    """Ask every record with choices once per rotation; each time it picks the best-scoring option (as score_vqa)."""
    model.eval()
    questions = [record for record in records if record.choices]
    scores: list[torch.Tensor] = []
    pending: list[TextPair] = []  # images are loaded record by record, as their pairs are scored
    for record in questions:
        pending.extend(_rotated_pairs(record))
        while len(pending) >= batch_size:
            scores.append(pair_scores(model, processor, pending[:batch_size])[0])
            pending = pending[batch_size:]
    if pending:
        scores.append(pair_scores(model, processor, pending)[0])
    log_likelihood = torch.cat(scores) if scores else torch.empty(0)
    picks, offset = [], 0
    for record in questions:
        n = len(record.choices)
        picks.append(log_likelihood[offset : offset + n * n].view(n, n).argmax(1).tolist())
        offset += n * n
    return CircularResult(picks, [record.choices.index(record.answer) for record in questions])
