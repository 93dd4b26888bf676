"""Reading a record's image file: any format Pillow opens, or DICOM (pixels only) through pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy
import pydicom
from PIL import Image

DICOM_SUFFIXES = (".dcm", ".dicom")


def is_dicom(path: Path) -> bool:
    """DICOM by suffix or by the 'DICM' preamble marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    with path.open("rb") as file:
        return file.read(132)[128:132] == b"DICM"


class NoPixelData(ValueError):
    """A DICOM file without an image (a report, a structured document)."""


class TooManyPixels(ValueError):
    """An image larger than the caller allows (checked before decoding)."""


def dicom_pixels(dataset: pydicom.Dataset) -> Image.Image:
    """The first frame of a DICOM dataset as an 8-bit greyscale or RGB image (min-max windowed)."""
    if "PixelData" not in dataset:
        raise NoPixelData("DICOM file has no pixel data")
    pixels = dataset.pixel_array.astype(numpy.float64)
    samples = int(dataset.get("SamplesPerPixel", 1))
    if pixels.ndim == (3 if samples == 1 else 4):
        pixels = pixels[0]
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    low, high = pixels.min(), pixels.max()
    scaled = (pixels - low) * (255.0 / (high - low)) if high > low else numpy.zeros_like(pixels)
    return Image.fromarray(scaled.round().astype(numpy.uint8), "RGB" if samples == 3 else "L")


def read_image(path: Path, max_pixels: int | None = None) -> Image.Image:
    """The pixels of an image file (DICOM included), decoded and detached from the file; size checked first."""
    if is_dicom(path):
        dataset = pydicom.dcmread(path)
        size = (int(dataset.get("Columns", 0)), int(dataset.get("Rows", 0)))
        if max_pixels is not None and size[0] * size[1] > max_pixels:
            raise TooManyPixels(f"image of {size[0]}x{size[1]} pixels exceeds {max_pixels}")
        return dicom_pixels(dataset)
    with Image.open(path) as image:
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise TooManyPixels(f"image of {image.width}x{image.height} pixels exceeds {max_pixels}")
        image.load()
        return image.copy()
