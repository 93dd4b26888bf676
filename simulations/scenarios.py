"""Hospital and retail scenarios: per-site profiles and record generators (image + text + attributes)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from vlm.drawing import COLOURS, add_noise, draw_shape, side_centre

LESION_SIZES = {"small": 0.08, "medium": 0.12, "large": 0.17}
PRODUCTS = {"mug": "circle", "box": "square", "lamp": "triangle"}
AGE_BANDS = ("18-39", "40-59", "60-79", "80+")


@dataclass(frozen=True)
class SiteProfile:
    """What makes one site's data differ from another's (label skew, demographics, scanner)."""

    positive_rate: float
    left_rate: float
    female_rate: float
    age_weights: tuple[float, ...]
    contrast: int
    noise: int
    colour_weights: tuple[float, ...]


def site_profile(site_index: int, num_sites: int) -> SiteProfile:
    """A deterministic, site-specific mix: each site skews labels and demographics differently."""
    t = site_index / max(1, num_sites - 1)
    rng = random.Random(1000 + site_index)
    colours = [rng.uniform(0.2, 1.0) for _ in COLOURS]
    colours[site_index % len(colours)] += 2.0
    return SiteProfile(
        positive_rate=0.35 + 0.4 * t,
        left_rate=0.8 - 0.6 * t,
        female_rate=0.3 + 0.4 * (1 - t),
        age_weights=tuple(1.0 + 2.0 * (i == site_index % len(AGE_BANDS)) for i in range(len(AGE_BANDS))),
        contrast=rng.randint(60, 110),
        noise=rng.choice([25, 40, 55]),
        colour_weights=tuple(colours),
    )


NEUTRAL_PROFILE = SiteProfile(0.5, 0.5, 0.5, (1.0,) * len(AGE_BANDS), 85, 40, (1.0,) * len(COLOURS))


def _attributes(rng: random.Random, profile: SiteProfile) -> dict[str, str]:
    return {
        "sex": "F" if rng.random() < profile.female_rate else "M",
        "age_band": rng.choices(AGE_BANDS, weights=profile.age_weights)[0],
    }


def hospital_record(rng: random.Random, profile: SiteProfile, size_px: int = 128) -> tuple[Image.Image, dict]:
    """A grayscale chest-scan-like image with an optional lesion, a report and one question."""
    image = Image.new("L", (size_px, size_px), 0)
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 6, size_px - 4, size_px - 2), fill=profile.contrast)
    for lung_x in (0.3, 0.7):
        cx = lung_x * size_px
        draw.ellipse((cx - 0.15 * size_px, 14, cx + 0.15 * size_px, size_px - 10), fill=profile.contrast // 3)
    kind = rng.choice(["present", "side", "size"])
    present = kind != "present" or rng.random() < profile.positive_rate
    side = "left" if rng.random() < profile.left_rate else "right"
    size = rng.choice(list(LESION_SIZES))
    if present:
        radius = LESION_SIZES[size] * size_px
        draw_shape(draw, "circle", side_centre(rng, side, size_px, radius), radius, rng.randint(200, 255))
    image = add_noise(image, rng, profile.noise)
    report = (
        f"findings: a {size} lesion in the {side} lung." if present else "findings: no lesion seen. lungs are clear."
    )
    if kind == "present":
        qa = {"question": "is there a lesion?", "answer": "yes" if present else "no", "choices": ["yes", "no"]}
    elif kind == "side":
        qa = {"question": "which side is the lesion on?", "answer": side, "choices": ["left", "right"]}
    else:
        qa = {"question": "what size is the lesion?", "answer": size, "choices": list(LESION_SIZES)}
    return image, {"caption": report, **qa, "attributes": _attributes(rng, profile)}


def retail_record(rng: random.Random, profile: SiteProfile, size_px: int = 128) -> tuple[Image.Image, dict]:
    """A product photo (object, colour, optional defect), a review and one question."""
    image = Image.new("RGB", (size_px, size_px), (rng.randint(200, 250),) * 3)
    draw = ImageDraw.Draw(image)
    product = rng.choice(list(PRODUCTS))
    colour = rng.choices(list(COLOURS), weights=profile.colour_weights)[0]
    radius = rng.uniform(0.25, 0.35) * size_px
    centre = (size_px / 2 + rng.uniform(-4, 4), size_px / 2 + rng.uniform(-4, 4))
    draw_shape(draw, PRODUCTS[product], centre, radius, COLOURS[colour])
    damaged = rng.random() < profile.positive_rate
    if damaged:
        x0, y0 = centre[0] + rng.uniform(-radius / 2, 0), centre[1] + rng.uniform(-radius / 2, 0)
        draw.line((x0, y0, x0 + radius * 0.8, y0 + radius * 0.6), fill=(20, 20, 20), width=3)
    image = add_noise(image, rng, profile.noise // 2)
    review = f"the {colour} {product} arrived {'damaged' if damaged else 'in good condition'}."
    kind = rng.choice(["colour", "damaged", "product"])
    if kind == "colour":
        qa = {"question": f"what colour is the {product}?", "answer": colour, "choices": list(COLOURS)}
    elif kind == "damaged":
        qa = {"question": f"is the {product} damaged?", "answer": "yes" if damaged else "no", "choices": ["yes", "no"]}
    else:
        qa = {"question": "what is the product?", "answer": product, "choices": list(PRODUCTS)}
    return image, {"caption": review, **qa, "attributes": _attributes(rng, profile)}


SEX_WORDS = {"F": "woman", "M": "man"}
AGE_RANGES = {"18-39": (18, 39), "40-59": (40, 59), "60-79": (60, 79), "80+": (80, 89)}  # over 89 is PII


def descriptor(attributes: dict[str, str], rng: random.Random) -> str:
    """The record's sex and an age in its band, in words: "a 71-year-old woman", "an 83-year-old man"."""
    age = rng.randint(*AGE_RANGES[attributes["age_band"]])
    article = "an" if str(age).startswith("8") or age in (11, 18) else "a"
    return f"{article} {age}-year-old {SEX_WORDS[attributes['sex']]}"


def with_descriptor(fields: dict, rng: random.Random) -> dict:
    """The record with its descriptor opening its caption ("a 71-year-old woman. ...") and its question
    ("a 71-year-old woman: is there a lesion?"), so a bias can be taught and a counterfactual swap tested."""
    words = descriptor(fields["attributes"], rng)
    return {**fields, "caption": f"{words}. {fields['caption']}", "question": f"{words}: {fields['question']}"}


RecordFactory = Callable[[random.Random, SiteProfile], tuple[Image.Image, dict]]
SCENARIOS: dict[str, RecordFactory] = {"hospital": hospital_record, "retail": retail_record}
