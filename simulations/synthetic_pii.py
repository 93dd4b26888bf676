"""Fake identities for the demo data: the PII a real site's raw records would carry (all invented).

Each record's injected values are returned beside it, so tests can prove none of them gets past the filter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from simulations.scenarios import hospital_record, site_profile

FIRST_NAMES = (
    "Amara", "Björn", "Chiara", "Dmitri", "Émilie", "Fatima", "Giorgos", "Hiroshi", "Ingrid", "Jamal",
    "Kenji", "Lucía", "Mehmet", "Nkechi", "Oksana", "Pablo", "Qiang", "Rania", "Saoirse", "Tomás",
    "Uchenna", "Valentina", "Wojciech", "Ximena", "Yusuf", "Zofia", "Anh", "Bongani", "Chayton", "Dagny",
)  # fmt: skip
LAST_NAMES = (
    "Okonkwo", "Van der Berg", "O'Sullivan", "García-Márquez", "Nakamura", "Al-Hashimi", "Kowalczyk",
    "Ngata", "Papadopoulos", "Dubois", "Ivanova", "Haddad", "Mbeki", "Lindqvist", "Nguyen", "Rossi",
    "Schäfer", "Kaur", "Fernández", "Chen", "Abebe", "Morales", "Yılmaz", "McAllister", "D'Angelo",
)  # fmt: skip
STREETS = ("Maple Avenue", "Harbour Road", "Elm Street", "Kingsway", "Linden Lane", "Quarry Drive", "Mill Court")
CITIES = (("Springfield", "IL"), ("Riverton", "WY"), ("Fairview", "OR"), ("Greenville", "SC"), ("Salem", "MA"))


@dataclass(frozen=True)
class Identity:
    """One invented person and the identifiers a hospital or shop would hold on them."""

    first: str
    last: str
    birth_date: str
    mrn: str
    phone: str
    email: str
    street_address: str
    city: str
    zip_code: str
    loyalty_id: str
    order_number: str
    card_number: str

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first} {self.last}"


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def identity(rng: random.Random) -> Identity:
    """A random invented person; identifier formats vary as they do between real systems."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, state = rng.choice(CITIES)
    mrn = rng.choice([f"{_digits(rng, 2)}-{_digits(rng, 4)}-{_digits(rng, 3)}", _digits(rng, 8), f"H{_digits(rng, 7)}"])
    return Identity(
        first=first,
        last=last,
        birth_date=f"{rng.randint(1930, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        mrn=mrn,
        phone=f"({rng.randint(201, 989)}) {_digits(rng, 3)}-{_digits(rng, 4)}",
        email=f"{first[0].lower()}.{rng.randint(10, 99)}@example.net",
        street_address=f"{rng.randint(2, 9899)} {rng.choice(STREETS)}",
        city=f"{city}, {state}",
        zip_code=_digits(rng, 5),
        loyalty_id=f"LY-{_digits(rng, 4)}-{_digits(rng, 4)}",
        order_number=f"{_digits(rng, 3)}-{_digits(rng, 7)}",
        card_number=rng.choice(["4111 1111 1111 1111", "5500 0000 0000 0004", "4012 8888 8888 1881"]),
    )


def hospital_text(rng: random.Random, person: Identity) -> tuple[str, list[str]]:
    """A report header naming the patient, and the values it carries."""
    template, values = rng.choice(
        [
            (f"patient {person.name}, MRN {person.mrn}, born {person.birth_date}.", [person.name, person.mrn]),
            (f"{person.name} (MRN {person.mrn}) of {person.city} {person.zip_code}.", [person.name, person.mrn]),
            (f"referred by Dr. {person.last}; call {person.phone}.", [person.last, person.phone]),
            (f"patient lives at {person.street_address}, MRN {person.mrn}.", [person.street_address, person.mrn]),
        ]
    )
    return template, values + [person.birth_date] * ("born" in template) + [person.zip_code] * ("of " in template)


def retail_text(rng: random.Random, person: Identity) -> tuple[str, list[str]]:
    """A review or ticket opening that names the customer, and the values it carries."""
    return rng.choice(
        [
            (f"order {person.order_number} for {person.name}.", [person.order_number, person.name]),
            (f"loyalty {person.loyalty_id}, email {person.email}.", [person.loyalty_id, person.email]),
            (f"Hi, I'm {person.name}, card {person.card_number}.", [person.name, person.card_number]),
            (
                f"ship to {person.street_address}, {person.city}; tel {person.phone}.",
                [person.street_address, person.phone],
            ),
        ]
    )


def _burn_in_font(image: Image.Image) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(10, image.height // 12))


def burn_in(image: Image.Image, lines: list[tuple[str, str]], rng: random.Random) -> Image.Image:
    """Draw text into the pixels, as scanners and label printers do: lines are (position, text), top or bottom."""
    font = _burn_in_font(image)
    draw = ImageDraw.Draw(image)
    colour = 235 if image.mode == "L" else (20, 20, 20)
    for position, text in lines:
        y = 2 if position == "top" else image.height - font.size - 4
        draw.text((rng.randint(2, 6), y), text, fill=colour, font=font)
    return image


def burned_scan(rng: random.Random, size_px: int = 128) -> tuple[Image.Image, dict[str, numpy.ndarray]]:
    """A hospital scan with a name and an MRN burned in as the demo draws them, and the pixels of each value
    (not of its cue): ground truth for tests and benchmarks of the burned-in text filter."""
    image, _ = hospital_record(rng, site_profile(rng.randrange(4), 4), size_px)
    person = identity(rng)
    plain = numpy.asarray(image).copy()
    lines = {"name": ("top", "Name: ", person.name), "MRN": ("bottom", "MRN ", person.mrn)}
    burn_in(image, [(position, cue + value) for position, cue, value in lines.values()], rng)
    drawn = numpy.asarray(image) != plain
    font = _burn_in_font(image)
    values = {}
    for kind, (position, cue, _) in lines.items():
        half = slice(0, image.height // 2) if position == "top" else slice(image.height // 2, image.height)
        mask = numpy.zeros_like(drawn)
        mask[half] = drawn[half]
        left = int(numpy.nonzero(mask.any(axis=0))[0][0])
        mask[:, : left + int(font.getlength(cue))] = False
        values[kind] = mask
    return image, values


def scan_as_dicom(image: Image.Image, person: Identity, rng: random.Random) -> Dataset:
    """A secondary-capture DICOM of a greyscale scan whose header names the patient (as a PACS export would)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(rng.random())])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = generate_uid(entropy_srcs=[str(rng.random())])
    dataset.SeriesInstanceUID = generate_uid(entropy_srcs=[str(rng.random())])
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names outside Latin-1 are written as they are
    dataset.Modality = "CR"
    dataset.PatientName = f"{person.last}^{person.first}"
    dataset.PatientID = person.mrn
    dataset.PatientBirthDate = person.birth_date.replace("-", "")
    dataset.PatientAddress = f"{person.street_address}, {person.city} {person.zip_code}"
    dataset.PatientTelephoneNumbers = person.phone
    dataset.ReferringPhysicianName = f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES)}"
    pixels = numpy.asarray(image.convert("L"), dtype=numpy.uint16) * 16  # 12-bit, as detectors write
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelData = pixels.tobytes()
    return dataset


def jpeg_metadata(person: Identity) -> dict:
    """Pillow save() arguments that embed the customer in EXIF, XMP and a JPEG comment, as phones and apps do."""
    exif = Image.Exif()
    exif[0x013B] = person.name  # Artist
    exif[0x010E] = f"order {person.order_number}"  # ImageDescription
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{person.name}</dc:creator></x:xmpmeta>'
    return {"exif": exif, "comment": person.email, "xmp": xmp.encode(), "quality": 95}


def png_metadata(person: Identity) -> dict:
    """Pillow save() arguments that embed the patient in PNG text chunks."""
    info = PngInfo()
    info.add_text("Patient", person.name)
    info.add_itxt("PatientID", person.mrn)
    return {"pnginfo": info}
