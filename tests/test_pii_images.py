"""Image PII: metadata never survives, burned-in PII is filled, DICOM headers and pixels are de-identified."""

from __future__ import annotations

import json

import numpy
import pydicom
import pytest
from matplotlib import cbook
from PIL import Image, ImageCms, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from privacy.pii import ocr as ocr_module
from privacy.pii.images import ImageFilter
from privacy.pii.ocr import TesserocrOCR
from privacy.pii.pipeline import PiiFilter
from privacy.pii.settings import PiiSettings
from privacy.pii.text import KnownTerms, PiiUnavailable, TextFilter
from simulations.synthetic_pii import Identity, scan_as_dicom
from vlm.records import Record, load_dataset

NAME = "Ingrid Okonkwo"
PERSON = Identity(
    "Ingrid", "Okonkwo", "1961-04-09", "77-1234-908", "(415) 555-0199", "i.okonkwo@example.net",
    "88 Linden Lane", "Salem, MA", "01970", "LY-1111-2222", "123-4567890", "4111 1111 1111 1111",
)  # fmt: skip


@pytest.fixture(scope="module")
def pii_filter() -> PiiFilter:
    return PiiFilter(PiiSettings())


def _scan(text_lines: list[str], background: int = 90) -> Image.Image:
    """A greyscale scan with anatomy-like shading and burned-in white text."""
    image = Image.new("L", (160, 160), 10)
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 4, 152, 156), fill=background)
    font = ImageFont.load_default(size=13)
    for row, line in enumerate(text_lines):
        draw.text((6, 4 + 130 * row), line, fill=235, font=font)
    return image


def _ocr_words(image: Image.Image) -> str:
    return " ".join(TesserocrOCR().perform_ocr(image)["text"])


def _write(folder, entries: list[tuple[str, dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metadata.jsonl").open("w") as metadata:
        for file_name, fields in entries:
            metadata.write(json.dumps({"file_name": file_name, **fields}) + "\n")


def test_burned_in_name_is_filled_and_harmless_text_stays(pii_filter):
    scan = _scan([f"Name: {NAME}", "PORTABLE CHEST"])
    assert "Okonkwo" in _ocr_words(scan)  # the OCR can read it before filtering
    clean, found = pii_filter.images.clean(scan, KnownTerms(()))
    words = _ocr_words(clean)
    assert "Okonkwo" not in words and "Ingrid" not in words
    assert found["PERSON"] >= 1 and found["image-text-boxes"] >= 1
    top, bottom = numpy.asarray(clean)[:20], numpy.asarray(scan)[140:]
    assert (top == 0).mean() > 0.3  # the name's line is filled
    assert numpy.array_equal(numpy.asarray(clean)[140:], bottom)  # "PORTABLE CHEST" is not PII


def test_metadata_never_survives_and_pixels_do(tmp_path, pii_filter):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    ramp = numpy.linspace(0, 255, 64, dtype=numpy.uint8)
    photo = Image.fromarray(numpy.stack([*numpy.meshgrid(ramp, ramp[::-1]), numpy.full((64, 64), 90, numpy.uint8)], -1))
    exif = Image.Exif()
    exif[0x013B] = NAME
    exif[0x010E] = "order 123-4567890"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = f"<x:xmpmeta><dc:creator>{NAME}</dc:creator></x:xmpmeta>".encode()
    photo.save(source / "photo.jpg", exif=exif, comment=f"for {NAME}", xmp=xmp, icc_profile=srgb, quality=95)
    info = PngInfo()
    info.add_text("Patient", NAME)
    info.add_itxt("Address", "88 Linden Lane")
    info.add_text("Comment", "MRN 77-1234-908", zip=True)
    photo.save(source / "scan.png", pnginfo=info)
    _write(source, [("photo.jpg", {"caption": "a photo"}), ("scan.png", {"caption": "a scan"})])
    records, _ = load_dataset(source)
    report = pii_filter.run(records, out)
    assert report.events["images-with-metadata"] == 2 and report.entities[("image-metadata", "PERSON")] >= 2
    for file_name in ("000000.jpg", "000001.png"):
        raw = (out / file_name).read_bytes()
        for value in (b"Okonkwo", b"Ingrid", b"Linden", b"1234-908", b"sRGB"):
            assert value not in raw, (file_name, value)
        with Image.open(out / file_name) as image:
            assert not image.getexif() and not set(image.info) & {"exif", "xmp", "comment", "icc_profile", "Patient"}
    with Image.open(out / "000001.png") as png:
        assert numpy.array_equal(numpy.asarray(png), numpy.asarray(photo))


def test_dicom_header_and_burned_in_pixels_are_deidentified(tmp_path, pii_filter):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    dataset = scan_as_dicom(
        _scan([f"{PERSON.last.upper()}^{PERSON.first.upper()}"]), PERSON, __import__("random").Random(0)
    )
    dataset.InstitutionName = "Saint Elsewhere Hospital"
    dataset.add_new(0x00091010, "LO", f"private note on {NAME}")
    dataset.save_as(source / "scan.dcm", enforce_file_format=True)
    _write(source, [("scan.dcm", {"question": "is there a lesion?", "answer": "no"})])
    records, _ = load_dataset(source)
    report = pii_filter.run(records, out)
    assert report.events["dicom-headers-deidentified"] == 1 and report.events["image-text-boxes"] >= 1
    cleaned = pydicom.dcmread(out / "000000.dcm")
    header = str(cleaned).lower()
    for value in ("okonkwo", "ingrid", "77-1234-908", "19610409", "linden", "555-0199", "elsewhere"):
        assert value not in header
    assert not any(element.tag.is_private for element in cleaned)
    assert cleaned.PatientIdentityRemoved == "YES" and cleaned.BurnedInAnnotation == "NO"
    assert "OKONKWO" not in _ocr_words(Image.fromarray(cleaned.pixel_array))
    assert load_dataset(out)[0][0].load_image().size == (160, 160)


def test_dicom_without_pixel_data_is_skipped_and_counted(tmp_path):
    dataset = scan_as_dicom(_scan([]), PERSON, __import__("random").Random(0))
    del dataset.PixelData
    dataset.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    _scan([]).save(tmp_path / "ok.png")
    _write(tmp_path, [("report.dcm", {"caption": "x"}), ("ok.png", {"caption": "y"})])
    records, report = load_dataset(tmp_path)
    assert len(records) == 1 and report.skipped["no-pixel-data"] == 1
    assert "report.dcm" not in report.problems[0] and "field 'file_name'" in report.problems[0]


def test_an_unreadable_image_drops_the_record_and_counts_it(tmp_path, pii_filter):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _scan([]).save(tmp_path / "ok.png")
    records = [
        Record("s:1", tmp_path / "broken.png", "a caption", None, None, None, {}),
        Record("s:2", tmp_path / "ok.png", "a caption", None, None, None, {}),
    ]
    report = pii_filter.run(records, tmp_path / "out")
    assert report.events["records-dropped-unfilterable"] == 1 and report.events["records-out"] == 1
    assert len((tmp_path / "out" / "metadata.jsonl").read_text().splitlines()) == 1


def test_missing_ocr_engine_fails_closed(monkeypatch):
    text_filter = TextFilter(PiiSettings())
    monkeypatch.setattr(ocr_module, "find_tessdata", lambda language="eng": None)
    with pytest.raises(PiiUnavailable, match="tesseract"):
        ImageFilter(text_filter, ocr=True, face_blur=False)
    assert ImageFilter(text_filter, ocr=False, face_blur=False).ocr is None


def test_face_blur_blurs_a_real_portrait():
    portrait = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    blurring = ImageFilter(TextFilter(PiiSettings()), ocr=False, face_blur=True)
    blurred, found = blurring.clean(portrait, KnownTerms(()))
    assert found["faces-blurred"] == 1
    face = (slice(140, 360), slice(180, 360))  # the detected face lies here in this portrait
    detail = [
        numpy.abs(numpy.diff(numpy.asarray(image.convert("L"))[face].astype(int), axis=1)).mean()
        for image in (portrait, blurred)
    ]
    assert detail[1] < 0.5 * detail[0]
    corner = (slice(0, 60), slice(0, 60))
    assert numpy.array_equal(numpy.asarray(blurred)[corner], numpy.asarray(portrait)[corner])
