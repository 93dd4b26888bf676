"""Burned-in text: each line read in its own polarity, misread PII still filled, harmless scans left alone."""

from __future__ import annotations

import json
import random

import numpy
import pytest
from PIL import Image, ImageDraw, ImageFont

from privacy.pii.burned_in import layout, suspect_lines
from privacy.pii.ocr import TesserocrOCR
from privacy.pii.pipeline import PiiFilter
from privacy.pii.settings import PiiSettings
from privacy.pii.text import KnownTerms
from privacy.pii.text_regions import stroke_maps, text_pages
from simulations.scenarios import hospital_record, site_profile
from simulations.synthetic_pii import burned_scan
from vlm.records import load_dataset


@pytest.fixture(scope="module")
def pii_filter() -> PiiFilter:
    return PiiFilter(PiiSettings())


def _ocr(lines: list[list[tuple[str, float]]]) -> dict:
    """An OCR result in pytesseract's layout: one list of (word, confidence) per line."""
    words = [(word, confidence, number) for number, line in enumerate(lines, 1) for word, confidence in line]
    return {
        "text": [word for word, _, _ in words],
        "conf": [confidence for _, confidence, _ in words],
        "line_num": [number for _, _, number in words],
        **{key: [0] * len(words) for key in ("left", "top", "width", "height")},
    }


SUSPECT = [
    [("MRNAS306699", 18)],  # cue merged into a misread MRN
    [("MRN", 92), ("Ho45", 59), ("1679", 84)],  # digits split over words
    [("{tzel", 0), ("Haile", 93)],  # a misread name, one word read confidently
    [("CHRISTODOULOUABIRGITT,", 0)],  # FAMILY^GIVEN with '^' read as a letter
    [("OKONKWO^INGRID", 12)],
]
HARMLESS = [
    [("PORTABLE", 95), ("CHEST", 93)],
    [("P0RTABLE", 70), ("SUPINE", 88)],  # an annotation word misread by one letter
    [("wag,", 11), ("VR", 35), ("Ss", 26)],  # noise read off anatomy: nothing read confidently
    [("L", 96)],
    [("5", 90), ("cm", 91)],
]


@pytest.mark.parametrize("line", SUSPECT, ids=[" ".join(word for word, _ in line) for line in SUSPECT])
def test_misread_identifiers_and_names_are_suspect(line):
    text = layout(_ocr([line]))[0]
    assert suspect_lines(text, _ocr([line])) == [(0, len(text))]


@pytest.mark.parametrize("line", HARMLESS, ids=[" ".join(word for word, _ in line) for line in HARMLESS])
def test_annotations_and_noise_are_not_suspect(line):
    assert suspect_lines(layout(_ocr([line]))[0], _ocr([line])) == []


def test_low_confidence_words_reach_the_analyzer_only_when_they_hold_a_digit():
    text, masked, _ = layout(_ocr([[("Qksa", 20), ("H97", 39), ("16347", 12)]]))
    assert text == "Qksa H97 16347" and masked == "     H97 16347"


def _two_polarities() -> Image.Image:
    """Bright text on a dark scan and dark text on a light label, in one image."""
    image = Image.new("L", (256, 256), 20)
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 30, 246, 250), fill=110)
    draw.rectangle((0, 200, 256, 256), fill=225)
    font = ImageFont.load_default(size=18)
    draw.text((8, 6), "Name: Ingrid Okonkwo", fill=240, font=font)
    draw.text((8, 220), "MRN 77-1234-908", fill=15, font=font)
    return image


def test_each_line_is_read_once_in_its_own_polarity():
    gray = numpy.asarray(_two_polarities())
    pages = text_pages(gray)
    assert len(pages) == 1
    ink = pages[0] == 0
    bright, dark = stroke_maps(gray)
    top, bottom = (slice(0, 28), slice(0, 256)), (slice(214, 244), slice(0, 256))
    assert numpy.array_equal(ink[top], bright[top] == 1) and bright[top].sum() > 200
    assert numpy.array_equal(ink[bottom], dark[bottom] == 1) and dark[bottom].sum() > 200
    assert (dark[top] & ~bright[top]).sum() > 100  # the gaps between the bright letters, left out of the page
    words = " ".join(TesserocrOCR().perform_ocr(Image.fromarray(gray))["text"])
    assert "Okonkwo" in words and "77-1234-908" in words


def test_demo_scans_lose_their_burned_in_name_and_mrn(pii_filter):
    """From the pixels alone (no known names): bench.pii measures 93-97% on 120 scans per seed."""
    rng, filled = random.Random(7), {"name": 0, "MRN": 0}
    for _ in range(20):
        image, values = burned_scan(rng)
        clean = numpy.asarray(pii_filter.images.clean(image, KnownTerms(()))[0])
        for kind, pixels in values.items():
            filled[kind] += (clean[pixels] == 0).mean() >= 0.9
    assert min(filled.values()) >= 18, filled


def test_a_scan_without_text_is_left_alone(pii_filter):
    rng = random.Random(3)
    for _ in range(4):
        image, _ = hospital_record(rng, site_profile(rng.randrange(4), 4))
        clean, found = pii_filter.images.clean(image.copy(), KnownTerms(()))
        assert found["image-text-boxes"] == 0 and numpy.array_equal(numpy.asarray(clean), numpy.asarray(image))


def test_known_names_are_found_in_misread_ocr_text():
    known = KnownTerms({"Valentina Kowalczyk", "Jamal Chen"})
    text = "Name: Vaientina Kowatczy\nPORTABLE CHEST\nOKONKWO^KOWALCZYK"
    found = {text[result.start : result.end] for result in known.in_ocr_text(text)}
    assert {"Vaientina", "Kowatczy"} <= found and "CHEST" not in found and "PORTABLE" not in found
    assert any("KOWALCZYK" in value for value in found)
    assert known.results("Kowatczy was seen") == []  # record text is matched exactly


def test_a_record_s_own_identifier_is_filled_in_its_image(tmp_path, pii_filter):
    image = Image.new("L", (160, 160), 10)
    ImageDraw.Draw(image).text((8, 8), "AB-12", fill=235, font=ImageFont.load_default(size=16))
    rows = [("with.png", "account AB-12 is on file."), ("without.png", "a scan of the chest.")]
    for file_name, _ in rows:
        image.save(tmp_path / file_name)
    (tmp_path / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": name, "caption": caption}) + "\n" for name, caption in rows)
    )
    records, _ = load_dataset(tmp_path)
    pii_filter.run(records, tmp_path / "out")
    label = (slice(6, 28), slice(6, 60))
    filled = [(numpy.asarray(Image.open(tmp_path / "out" / f"{index:06d}.png"))[label] == 0).mean() for index in (0, 1)]
    assert filled[0] > 0.5 and filled[1] == 0  # the caption's account number is what fills the burned-in one
