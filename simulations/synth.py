"""Write synthetic scenario datasets: DIR/site-<i>/ per site plus DIR/server-eval/."""

from __future__ import annotations

import json
import random
from pathlib import Path

from simulations.scenarios import SCENARIOS, RecordFactory, SiteProfile, site_profile
from vlm.records import METADATA

SERVER_EVAL = "server-eval"
COMPLETE = ".complete"


def site_dir(root: Path | str, index: int) -> Path:
    """The folder of site index under a scenario root."""
    return Path(root) / f"site-{index}"


def is_complete(root: Path | str) -> bool:
    """Whether write_scenario finished writing root (a crash mid-write leaves no marker)."""
    return (Path(root) / COMPLETE).is_file()


def _write_folder(folder: Path, factory: RecordFactory, profiles: list[SiteProfile], count: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with (folder / METADATA).open("w", encoding="utf-8") as metadata:
        for number in range(count):
            image, fields = factory(rng, rng.choice(profiles))
            file_name = f"{number:05d}.png"
            image.save(folder / file_name)
            metadata.write(json.dumps({"file_name": file_name, **fields}) + "\n")


def write_scenario(
    scenario: str, sites: int, out: Path | str, records_per_site: int = 240, eval_records: int = 240, seed: int = 0
) -> Path:
    """Write every site's dataset (site-specific skew) and a server-eval set drawn from all sites' mixes."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    if sites < 1:
        raise ValueError("sites must be at least 1")
    out = Path(out)
    factory = SCENARIOS[scenario]
    profiles = [site_profile(index, sites) for index in range(sites)]
    for index, profile in enumerate(profiles):
        _write_folder(site_dir(out, index), factory, [profile], records_per_site, seed * 1000 + index)
    _write_folder(out / SERVER_EVAL, factory, profiles, eval_records, seed * 1000 + 999)
    (out / COMPLETE).write_text(f"{scenario} {sites} sites\n", encoding="utf-8")
    return out
