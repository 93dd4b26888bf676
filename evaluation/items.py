"""Per-question results of one evaluation, kept in the server's memory for the gates (never written)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ItemResults:
    """Per scored question, in record order: right or not, and its record's attributes (server memory only)."""

    hits: tuple[bool, ...]
    attributes: tuple[dict[str, str], ...]
    min_group_size: int  # group figures leave out groups as small-cell suppression does
    margins: tuple[float | None, ...] = ()  # log(p(answer) / mean p(other choice)); None for an open question
    likelihoods: tuple[float, ...] = ()  # log p(answer, then the end of the text)
    counterfactual_margins: tuple[float | None, ...] = ()  # the margin with the question's descriptors swapped;
    # None where it holds none (empty: not asked)

    def groups(self, attribute: str) -> tuple[list[bool], list[str]]:
        """The hits of the questions whose record has the attribute, and their values."""
        pairs = [(hit, attrs[attribute]) for hit, attrs in zip(self.hits, self.attributes) if attribute in attrs]
        return [hit for hit, _ in pairs], [value for _, value in pairs]
