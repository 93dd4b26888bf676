"""Plant the empirical audit's canaries into simulated sites' training data and keep their secret outside the run.

Each included canary becomes one record of its site's metadata.jsonl (an image named like the site's own, a question
and an answer), at a line the held-out split leaves to training; excluded canaries go nowhere. Neither the run
directory (but the sites' data under it) nor the configuration names a canary.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from audit.canaries import Canary, draw_canaries, read_secret, write_secret
from client.site import in_holdout
from contract.data_layout import site_folder
from contract.run_config import ConfigError, RunConfig
from vlm.records import METADATA


def secret_canaries(config: RunConfig, secret: Path, rng: random.Random) -> tuple[Canary, ...]:
    """The secret at path if one is there (prepared, e.g. the same canaries for several runs), else drawn and kept."""
    settings, sites = config.simulation.audit, config.federation.sites
    if not secret.exists():
        canaries = draw_canaries(settings.canaries, sites, rng, settings.alternatives)
        write_secret(secret, canaries)
        return canaries
    canaries = read_secret(secret)
    if len(canaries) != settings.canaries or any(canary.site >= sites for canary in canaries):
        raise ConfigError(
            f"{secret}: holds {len(canaries)} canaries for other sites or another count than "
            f"simulation.audit.canaries ({settings.canaries}); move it away to draw new ones"
        )
    return canaries


def plant(folder: Path, canaries: list[Canary], holdout_fraction: float, rng: random.Random) -> None:
    """Rewrite folder's metadata.jsonl with the canaries at random lines of the training split."""
    metadata = folder / METADATA
    lines = metadata.read_text(encoding="utf-8").splitlines()
    total = len(lines) + len(canaries)
    trained = [line for line in range(1, total + 1) if not in_holdout(f"{folder.name}:{line}", holdout_fraction)]
    if len(trained) < len(canaries):
        raise ConfigError(
            f"{folder}: {len(lines)} records leave too few training lines for {len(canaries)} canaries "
            "(raise data.records_per_site to at least a third of simulation.audit.canaries)"
        )
    at = dict(zip(sorted(rng.sample(trained, len(canaries))), rng.sample(canaries, len(canaries))))
    records = iter(lines)
    out: list[str] = []
    for line in range(1, total + 1):
        canary = at.get(line)
        if canary is None:
            out.append(next(records))
            continue
        file_name = f"{len(lines) + sorted(at).index(line):05d}.png"  # numbered after the site's own images
        canary.image().save(folder / file_name)
        out.append(json.dumps({"file_name": file_name, "question": canary.question, "answer": canary.answer}))
    metadata.write_text("".join(line + "\n" for line in out), encoding="utf-8")


def plant_canaries(config: RunConfig, data_root: Path, secret: Path) -> None:
    """With simulation.audit.canaries: draw (or read) the secret, then plant each included canary in its site."""
    if not config.simulation.audit.canaries:
        return
    rng = random.SystemRandom()
    canaries = secret_canaries(config, secret, rng)
    for site in range(config.federation.sites):
        mine = [canary for canary in canaries if canary.included and canary.site == site]
        if mine:
            plant(site_folder(data_root, site), mine, config.data.holdout_fraction, rng)
