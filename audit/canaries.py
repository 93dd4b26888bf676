"""The empirical audit's canaries and its secret: image-text records with random answers, each in or out at 1/2.

A canary is a noise image (drawn from its own seed), a question naming a random key ("what is on the red mug
left card?") and an answer of random words; no two canaries of a secret share a key or an answer. Its alternatives
are other answers drawn the same way: the exposure ranks the true answer's loss among them. The secret (every
canary, its site and whether it was included) is a JSON file kept by whoever runs the simulation, outside the run
directory and the sites' data: `<run dir>.audit-secret.json`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from audit.errors import AuditError
from storage.durable import replace_file

SECRET_SUFFIX = ".audit-secret.json"
SECRET_VERSION = 1
# Words the tiny presets' tokenizer knows whole (vlm.presets.DEMO_VOCABULARY); no sentence of the scenarios holds
# three of them in a row, so a canary's answer never occurs by chance in what a run writes.
WORDS = (
    "blue",
    "green",
    "purple",
    "red",
    "white",
    "yellow",
    "mug",
    "box",
    "lamp",
    "card",
    "small",
    "medium",
    "large",
    "left",
    "right",
    "lung",
)
KEY_WORDS, ANSWER_WORDS = 3, 3
MAX_CANARIES = len(WORDS) ** KEY_WORDS // 4  # keys and answers: no repeats, and no answer in a question
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Canary:
    """One audit canary: where it would go, whether it went, and what it says."""

    index: int
    site: int
    included: bool
    image_seed: int
    question: str
    answer: str
    alternatives: tuple[str, ...]  # other answers drawn the same way, for the exposure

    def image(self) -> Image.Image:
        """The canary's image: RGB noise from its seed."""
        pixels = random.Random(self.image_seed).randbytes(IMAGE_SIZE * IMAGE_SIZE * 3)
        return Image.frombytes("RGB", (IMAGE_SIZE, IMAGE_SIZE), pixels)


def secret_path(run_dir: Path) -> Path:
    """Where the simulation keeps a run's audit secret: beside the run directory, never inside it."""
    run_dir = Path(run_dir).resolve()
    return run_dir.with_name(run_dir.name + SECRET_SUFFIX)


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _unused(rng: random.Random, count: int, used: set[str]) -> str:
    """Random words not drawn before (remembered in used)."""
    while (words := _words(rng, count)) in used:
        pass
    used.add(words)
    return words


def draw_canaries(count: int, sites: int, rng: random.Random, alternatives: int = 63) -> tuple[Canary, ...]:
    """count canaries, each assigned a site at random and included with probability 1/2 (drawn after numbering)."""
    if not 1 <= count <= MAX_CANARIES or sites < 1 or alternatives < 1:
        raise ValueError(f"need 1 to {MAX_CANARIES} canaries, one site and one alternative")
    if alternatives >= len(WORDS) ** ANSWER_WORDS:
        raise ValueError(f"at most {len(WORDS) ** ANSWER_WORDS - 1} alternatives")
    canaries: list[Canary] = []
    keys: set[str] = set()
    answers: set[str] = set()
    for index in range(count):
        # No answer occurs in any question ("what is on the blue green red card?" holds "green red card"): an
        # excluded canary's answer would otherwise be in the training data.
        questions = [canary.question for canary in canaries]
        answer = _unused(rng, ANSWER_WORDS, answers)
        while any(answer in question for question in questions):
            answer = _unused(rng, ANSWER_WORDS, answers)
        others: list[str] = []
        while len(others) < alternatives:
            other = _words(rng, ANSWER_WORDS)
            if other != answer and other not in others:
                others.append(other)
        drawn = [*(canary.answer for canary in canaries), answer]
        question = f"what is on the {_unused(rng, KEY_WORDS, keys)} card?"
        while any(known in question for known in drawn):
            question = f"what is on the {_unused(rng, KEY_WORDS, keys)} card?"
        site, seed = rng.randrange(sites), rng.getrandbits(63)
        canaries.append(Canary(index, site, False, seed, question, answer, tuple(others)))
    return tuple(Canary(**{**asdict(canary), "included": rng.random() < 0.5}) for canary in canaries)


def write_secret(path: Path, canaries: tuple[Canary, ...]) -> None:
    """Write the secret whole (it replaces any file at path)."""
    payload = {"version": SECRET_VERSION, "canaries": [asdict(canary) for canary in canaries]}
    replace_file(Path(path), json.dumps(payload, indent=1))


def read_secret(path: Path) -> tuple[Canary, ...]:
    """The canaries of a secret file; AuditError naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(
            f"{path}: no audit secret (the simulation writes it when simulation.audit.canaries > 0)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AuditError(f"{path}: unreadable audit secret ({type(error).__name__})") from None
    try:
        if payload["version"] != SECRET_VERSION:
            raise AuditError(f"{path}: audit secret version {payload['version']!r}, expected {SECRET_VERSION}")
        canaries = tuple(
            Canary(**{**item, "alternatives": tuple(item["alternatives"])}) for item in payload["canaries"]
        )
    except (KeyError, TypeError) as error:
        raise AuditError(f"{path}: malformed audit secret ({type(error).__name__}: {error})") from None
    if not canaries or [canary.index for canary in canaries] != list(range(len(canaries))):
        raise AuditError(f"{path}: malformed audit secret (canaries must be numbered 0, 1, ...)")
    return canaries
