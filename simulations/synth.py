"""Write synthetic scenario datasets: DIR/site-<i>/ per site plus DIR/server-eval/."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from PIL import Image

from contract.data_layout import SERVER_EVAL, site_folder
from simulations.scenarios import SCENARIOS, SiteProfile, site_profile, with_descriptor
from simulations.synthetic_pii import (
    burn_in,
    hospital_text,
    identity,
    jpeg_metadata,
    png_metadata,
    retail_text,
    scan_as_dicom,
)
from vlm.records import METADATA

COMPLETE = ".complete"
INJECTED_PII = "injected_pii.json"  # synthetic ground truth for tests and benchmarks; never read by the pipeline
DICOM_EVERY = 4  # every fourth hospital scan is written as DICOM


def _complete_text(scenario: str, sites: int) -> str:
    return f"fedvlm synthetic dataset: {scenario}, {sites} sites\n"


def is_complete(root: Path | str) -> bool:
    """Whether write_scenario finished writing root (a crash mid-write leaves no marker)."""
    try:
        text = (Path(root) / COMPLETE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.fullmatch(r"fedvlm synthetic dataset: \w+, \d+ sites\n", text) is not None


def _with_pii(scenario: str, number: int, image: Image.Image, fields: dict, rng: random.Random, folder: Path):
    """Write the record's image carrying PII (text, metadata, burned-in pixels); return its fields and values."""
    person = identity(rng)
    opening, values = (hospital_text if scenario == "hospital" else retail_text)(rng, person)
    fields = {**fields, "caption": f"{opening} {fields['caption']}"}
    if rng.random() < 0.2:
        cue = "patient" if scenario == "hospital" else "customer"
        fields["question"] = f"{cue} {person.name}: {fields['question']}"
        values.append(person.name)
    if scenario == "hospital":
        burn_in(image, [("top", f"Name: {person.name}"), ("bottom", f"MRN {person.mrn}")], rng)
        values += [person.name, person.mrn, person.birth_date, person.phone, person.zip_code]
        if number % DICOM_EVERY == 0:
            file_name = f"{number:05d}.dcm"
            scan_as_dicom(image, person, rng).save_as(folder / file_name, enforce_file_format=True)
        else:
            file_name = f"{number:05d}.png"
            image.save(folder / file_name, **png_metadata(person))
    else:
        if rng.random() < 0.5:
            burn_in(image, [("bottom", f"Order {person.order_number}")], rng)
        values += [person.name, person.order_number, person.email]
        file_name = f"{number:05d}.jpg"
        image.save(folder / file_name, **jpeg_metadata(person))
    return {"file_name": file_name, **fields}, values


def _write_folder(
    folder: Path,
    scenario: str,
    profiles: list[SiteProfile],
    count: int,
    seed: int,
    with_pii: bool,
    descriptors: bool = False,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Descriptors draw from their own stream, so the records are the same with them or without.
    rng, pii_rng, descriptor_rng = random.Random(seed), random.Random(seed + 7_000_000), random.Random(seed + 9_000_000)
    injected: set[str] = set()
    with (folder / METADATA).open("w", encoding="utf-8") as metadata:
        for number in range(count):
            image, fields = SCENARIOS[scenario](rng, rng.choice(profiles))
            if descriptors:
                fields = with_descriptor(fields, descriptor_rng)
            if with_pii:
                entry, values = _with_pii(scenario, number, image, fields, pii_rng, folder)
                injected.update(values)
            else:
                entry = {"file_name": f"{number:05d}.png", **fields}
                image.save(folder / entry["file_name"])
            metadata.write(json.dumps(entry, ensure_ascii=False) + "\n")
    if with_pii:
        (folder / INJECTED_PII).write_text(json.dumps(sorted(injected), ensure_ascii=False), encoding="utf-8")


def write_scenario(
    scenario: str,
    sites: int,
    out: Path | str,
    records_per_site: int = 240,
    eval_records: int = 240,
    seed: int = 0,
    descriptors: bool = False,
) -> Path:
    """Write every site's dataset (site-specific skew) and a server-eval set drawn from all sites' mixes.

    descriptors: questions and captions also name each record's sex and age ("a 71-year-old woman").
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    if sites < 1:
        raise ValueError("sites must be at least 1")
    out = Path(out)
    profiles = [site_profile(index, sites) for index in range(sites)]
    for index, profile in enumerate(profiles):
        _write_folder(
            site_folder(out, index),
            scenario,
            [profile],
            records_per_site,
            seed * 1000 + index,
            with_pii=True,
            descriptors=descriptors,
        )
    _write_folder(
        out / SERVER_EVAL, scenario, profiles, eval_records, seed * 1000 + 999, with_pii=False, descriptors=descriptors
    )
    (out / COMPLETE).write_text(_complete_text(scenario, sites), encoding="utf-8")
    return out
