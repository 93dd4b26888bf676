"""DICOM: header de-identification (PS3.15 Annex E basic profile, dicom-anonymizer) and pixel redaction."""

from __future__ import annotations

from pathlib import Path

import numpy
import pydicom
from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, initialize_actions_2024b
from PIL import Image
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian

from vlm.image_files import dicom_pixels

# Header values that name the patient or the study; burned-in copies of them are redacted from the pixels.
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "InstitutionName",
    "StudyID",
)


PERSON_KEYWORDS = ("PatientName", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName")


def person_names_in_header(dataset: pydicom.Dataset) -> tuple[str, ...]:
    """The header's person names ('Family^Given' becomes 'Given Family')."""
    names = []
    for keyword in PERSON_KEYWORDS:
        value = dataset.get(keyword)
        for single in value if isinstance(value, MultiValue) else [value] if value else []:
            parts = [part for part in str(single).split("^")[:2] if part.strip()]
            if parts:
                names.append(" ".join(reversed(parts)))
    return tuple(names)


def identifying_values(dataset: pydicom.Dataset) -> tuple[str, ...]:
    """The header's identifying values, as text to look for in the pixels."""
    values = (str(dataset.get(keyword, "") or "") for keyword in IDENTIFYING_KEYWORDS)
    return tuple(value for value in values if value.strip())


def read_dicom(path: Path) -> tuple[pydicom.Dataset, Image.Image]:
    """The dataset and its first frame as an 8-bit image (NoPixelData when it holds none)."""
    dataset = pydicom.dcmread(path)
    return dataset, dicom_pixels(dataset)


def deidentified(dataset: pydicom.Dataset, pixels: Image.Image) -> pydicom.Dataset:
    """The dataset with the basic-profile header actions applied, private tags removed and the given pixels."""
    anonymize_dataset(dataset, delete_private_tags=True, base_rules_gen=initialize_actions_2024b)
    array = numpy.asarray(pixels)
    rgb = pixels.mode == "RGB"
    for keyword in ("NumberOfFrames", "PlanarConfiguration", "RescaleSlope", "RescaleIntercept", "WindowCenter"):
        if keyword in dataset:
            delattr(dataset, keyword)
    if "WindowWidth" in dataset:
        del dataset.WindowWidth
    dataset.Rows, dataset.Columns = array.shape[0], array.shape[1]
    dataset.SamplesPerPixel = 3 if rgb else 1
    dataset.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        dataset.PlanarConfiguration = 0
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.PixelData = array.astype(numpy.uint8).tobytes()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.BurnedInAnnotation = "NO"
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "fedvlm: PS3.15 Annex E basic profile; pixels OCR-redacted"
    return dataset
