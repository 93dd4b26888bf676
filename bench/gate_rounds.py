"""What the gates did with a run's rounds, counted from its metrics.jsonl rows and its adversary tables.

A round holds an adversary's update only if the adversary was in its round (`from_round` to `until_round`), was
sampled and replied usably (its site has an entry in the row's `update_hashes`); it is caught when the global adapter
did not take that update (the site is not in `aggregated_sites`: the round was rejected, skipped, or accepted
without it). A clean round holds no adversary's update and was judged; it is falsely rejected when the gates refused
its whole aggregate (the round was rejected, or attributed to a culprit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from contract.adversary import AdversarySettings
from contract.data_layout import site_name

JUDGED = ("accepted", "rejected")


@dataclass
class Episode:
    """One adversary table's rounds in a run: which held its update, which of them the global took, quarantines."""

    kind: str
    site: str
    from_round: int
    until_round: int | None
    held: list[int] = field(default_factory=list)  # rounds whose candidate held its update
    taken: list[int] = field(default_factory=list)  # those whose accepted global holds it
    quarantined: list[int] = field(default_factory=list)  # rounds of its episode in which it was quarantined

    @property
    def caught(self) -> int:
        """Rounds that held its update and whose global does not."""
        return len(self.held) - len(self.taken)


@dataclass
class Clean:
    """Judged rounds without any adversary's update, and how many of them the gates refused."""

    rounds: list[int] = field(default_factory=list)
    false_rejections: list[int] = field(default_factory=list)
    honest_quarantined: list[tuple[int, str]] = field(default_factory=list)  # (round, site): in any round


@dataclass
class RoundCounts:
    """A run's episodes and clean rounds."""

    episodes: list[Episode]
    clean: Clean

    def as_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _active(adversaries: tuple[AdversarySettings, ...], server_round: int) -> dict[str, AdversarySettings]:
    return {site_name(a.site): a for a in adversaries if a.attacks_in(server_round)}


def count_rounds(rows: list[dict], adversaries: tuple[AdversarySettings, ...]) -> RoundCounts:
    """Episodes and clean rounds of a run's rows (round 0, the starting model, is neither)."""
    episodes = {id(a): Episode(a.kind, site_name(a.site), a.from_round, a.until_round) for a in adversaries}
    clean = Clean()
    for row in rows:
        server_round = row["round"]
        if server_round < 1:
            continue
        active = _active(adversaries, server_round)
        updates = set(row.get("update_hashes", {}))
        added = row.get("quarantined", {}).get("added", [])
        for site, settings in active.items():
            episode = episodes[id(settings)]
            if site in added:
                episode.quarantined.append(server_round)
            if site in updates:
                episode.held.append(server_round)
                if site in row.get("aggregated_sites", []):
                    episode.taken.append(server_round)
        clean.honest_quarantined += [(server_round, site) for site in added if site not in active]
        if row.get("status") in JUDGED and not updates & set(active):
            clean.rounds.append(server_round)
            if row["status"] == "rejected" or row.get("attribution") is not None:
                clean.false_rejections.append(server_round)
    return RoundCounts(list(episodes.values()), clean)


def gate_time(rows: list[dict]) -> tuple[float, float]:
    """Seconds of server evaluations and gates (trials included), and round wall seconds, over judged rounds."""
    judged = [row for row in rows if row["round"] >= 1 and "gate_seconds" in row]
    return sum(row["gate_seconds"] for row in judged), sum(row["seconds"] for row in judged)
