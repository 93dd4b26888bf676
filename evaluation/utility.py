"""Utility: VQA accuracy of a model on records, overall and per attribute group (counts only)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch

from evaluation.items import ItemResults
from evaluation.likelihood import likelihood_margin
from vlm.attributes import suppress_small_cells
from vlm.collate import TextPair, encode_batch, target_log_likelihood, to_model
from vlm.records import Record


@dataclass
class VqaScore:
    """Correct/total counts, overall and per attribute value."""

    correct: int = 0
    total: int = 0
    groups: dict[str, dict[str, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0]))
    )
    hits: list[bool] = field(default_factory=list)  # per question, in record order (kept in memory, never written)
    attributes: list[dict[str, str]] = field(default_factory=list)  # each question's record attributes
    margins: list[float | None] = field(default_factory=list)  # per question: the answer's margin over the others
    likelihoods: list[float] = field(default_factory=list)  # per question: log p(answer, then the end of the text)

    @property
    def accuracy(self) -> float:
        """Fraction correct (0 when nothing was scored)."""
        return self.correct / self.total if self.total else 0.0

    def add(self, record: Record, hit: bool, likelihood: float, margin: float | None = None) -> None:
        """Count one scored question (margin: its answer's over the other choices, when it has choices)."""
        self.correct += int(hit)
        self.total += 1
        self.hits.append(hit)
        self.likelihoods.append(likelihood)
        self.margins.append(margin)
        self.attributes.append(dict(record.attributes))
        for name, value in record.attributes.items():
            self.groups[name][value][0] += int(hit)
            self.groups[name][value][1] += 1

    def group_counts(self, min_group_size: int) -> dict[str, dict[str, dict[str, int]]]:
        """Plain nested dict: attribute -> value -> {correct, total}; groups under min_group_size suppressed."""
        counts = {
            name: {value: {"correct": c, "total": t} for value, (c, t) in sorted(values.items())}
            for name, values in sorted(self.groups.items())
        }
        return suppress_small_cells(counts, min_group_size)

    def items(self, min_group_size: int) -> ItemResults:
        """Per-question correctness and attributes, for the gates' paired comparisons."""
        return ItemResults(
            tuple(self.hits), tuple(self.attributes), min_group_size, tuple(self.margins), tuple(self.likelihoods)
        )


@torch.no_grad()
def pair_scores(model, processor, pairs: list[TextPair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair: the target's summed log-likelihood, and whether greedy decoding reproduces it."""
    batch = encode_batch(processor, pairs)
    labels = batch.pop("labels")
    logits = model(**to_model(batch, model)).logits
    return target_log_likelihood(logits.cpu(), labels)


def log_likelihoods(model, processor, pairs: list[TextPair], batch_size: int = 32) -> list[float]:
    """Each pair's target log-likelihood (its end included), scored batch_size pairs at a time."""
    scores: list[float] = []
    for start in range(0, len(pairs), batch_size):
        scores.extend(pair_scores(model, processor, pairs[start : start + batch_size])[0].tolist())
    return scores


def score_vqa(model, processor, records: list[Record], batch_size: int = 32) -> VqaScore:
    """Score every record with a question: the best-scoring choice when choices exist, else greedy exact match."""
    model.eval()
    score = VqaScore()
    questions = [r for r in records if r.question is not None]
    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        images = [record.load_image() for record in chunk]
        pairs, owners = [], []
        for index, (record, image) in enumerate(zip(chunk, images)):
            for candidate in record.choices or (record.answer,):
                pairs.append(TextPair(image, f"question: {record.question}", candidate))
                owners.append(index)
        log_likelihood, greedy = pair_scores(model, processor, pairs)
        for index, record in enumerate(chunk):
            rows = [row for row, owner in enumerate(owners) if owner == index]
            if record.choices:
                scores = [float(log_likelihood[row]) for row in rows]
                best = max(range(len(rows)), key=lambda choice: scores[choice])
                answer = record.choices.index(record.answer)
                alternatives = scores[:answer] + scores[answer + 1 :]
                margin = likelihood_margin(scores[answer], alternatives) if alternatives else None
                score.add(record, record.choices[best] == record.answer, scores[answer], margin)
            else:
                score.add(record, bool(greedy[rows[0]]), float(log_likelihood[rows[0]]))
    return score
