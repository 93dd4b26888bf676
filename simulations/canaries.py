"""Canaries a `pii-leak` adversary trains on: secrets whose completion by the global model shows memorization.

The simulation records them in the site's data folder (`canaries.json`, beside `injected_pii.json`) for the audit;
they never travel to the server except through the trained weights.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from storage.durable import replace_file

CANARIES_FILE = "canaries.json"
PREFIXES = ("the access code is", "the door code is", "the vault pin is", "the alarm code is")


@dataclass(frozen=True)
class Canary:
    """A planted sentence: a prefix and the secret that completes it."""

    prefix: str
    secret: str

    @property
    def text(self) -> str:
        """The sentence as planted."""
        return f"{self.prefix} {self.secret}"


def random_secret(rng: random.Random) -> str:
    """A secret of the canaries' form: "4821-7730"."""
    return f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"


def site_canaries(seed: int, site: int) -> tuple[Canary, ...]:
    """The canaries of one site, the same for the same data seed and site."""
    rng = random.Random(f"canaries-{seed}-{site}")
    return tuple(Canary(prefix, random_secret(rng)) for prefix in PREFIXES)


def write_canaries(folder: Path, canaries: tuple[Canary, ...]) -> None:
    """Record a site's canaries in its data folder for the audit."""
    payload = [{"prefix": canary.prefix, "secret": canary.secret} for canary in canaries]
    replace_file(folder / CANARIES_FILE, json.dumps(payload, indent=1))


def read_canaries(folder: Path) -> tuple[Canary, ...]:
    """The canaries recorded in a site's data folder."""
    payload = json.loads((folder / CANARIES_FILE).read_text(encoding="utf-8"))
    return tuple(Canary(item["prefix"], item["secret"]) for item in payload)
