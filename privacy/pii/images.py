"""Image PII: rebuild every image from its pixels (no metadata survives), fill burned-in PII text, blur faces."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy
from PIL import Image, ImageDraw
from PIL.ImageFilter import GaussianBlur
from presidio_analyzer import RecognizerResult

from privacy.pii.burned_in import layout, line_boxes, suspect_lines, title_cased
from privacy.pii.ocr import OcrUnavailable, TesserocrOCR
from privacy.pii.redactor import ImageAnalyzerEngine
from privacy.pii.text import KnownTerms, PiiUnavailable, TextFilter

BOX_MARGIN = 2
FACE_CASCADE = "haarcascade_frontalface_default.xml"


def rebuilt(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels: no EXIF, XMP, ICC profile, PNG text chunk or JPEG comment."""
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return Image.frombytes(image.mode, image.size, image.tobytes())


BINARY_INFO = ("exif", "icc_profile", "dpi", "transparency")  # EXIF is read tag by tag below


def _as_text(value: str | bytes) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return "".join(character if character.isprintable() else " " for character in text).strip()


def metadata_texts(image: Image.Image) -> list[str]:
    """Every text an image file carries beside its pixels (EXIF values, XMP, PNG text chunks, comments)."""
    values = [value for key, value in image.info.items() if key not in BINARY_INFO]
    values += list(image.getexif().values())
    return [text for text in (_as_text(v) for v in values if isinstance(v, str | bytes)) if text]


@dataclass(frozen=True)
class ImageText:
    """An image rebuilt from its pixels, with the words OCR read in it (not yet analyzed)."""

    image: Image.Image
    ocr_result: dict
    text: str
    masked: str
    spans: list[tuple[int, int]]


class ImageFilter:
    """Pixels-only rebuild, OCR redaction of burned-in PII (presidio-image-redactor + tesseract), face blur.

    Images are read one by one and their words analyzed in batches (NER batches well; interleaved with
    OCR, each short text costs several times more).
    """

    def __init__(self, text_filter: TextFilter, ocr: bool, face_blur: bool) -> None:
        self.text_filter = text_filter
        try:
            self.ocr = TesserocrOCR() if ocr else None
        except OcrUnavailable as error:
            raise PiiUnavailable(str(error)) from None
        self.faces = None
        if face_blur:
            self.faces = cv2.CascadeClassifier(cv2.data.haarcascades + FACE_CASCADE)
            if self.faces.empty():
                raise PiiUnavailable("OpenCV's face detector cannot load")

    def read(self, image: Image.Image) -> ImageText:
        """The image without metadata, and its burned-in words."""
        image = rebuilt(image)
        if self.ocr is None:
            return ImageText(image, {}, "", "", [])
        ocr_result = ImageAnalyzerEngine.remove_space_boxes(self.ocr.perform_ocr(image))
        return ImageText(image, ocr_result, *layout(ocr_result))

    def redact(self, items: list[tuple[ImageText, tuple[KnownTerms, ...]]]) -> list[tuple[Image.Image, Counter]]:
        """Per image read: burned-in PII filled black, faces blurred; counts of what was found."""
        analyses = iter(self.text_filter.analyze([title_cased(item.masked) for item, _ in items if item.text]))
        cleaned = []
        for item, known in items:
            found: Counter = Counter()
            image = item.image
            if item.text:
                image = self._fill_text(item, next(analyses), known, found)
            if self.faces is not None:
                image = self._blur_faces(image, found)
            cleaned.append((image, found))
        return cleaned

    def clean(self, image: Image.Image, *known: KnownTerms) -> tuple[Image.Image, Counter]:
        """One image without metadata, burned-in PII filled black, faces blurred; counts of what was found."""
        return self.redact([(self.read(image), known)])[0]

    def _fill_text(
        self, item: ImageText, results: list[RecognizerResult], known: tuple[KnownTerms, ...], found: Counter
    ) -> Image.Image:
        results = results + [result for terms in known for result in terms.in_ocr_text(item.text)]
        found.update(result.entity_type for result in results)
        hits = [(result.start, result.end) for result in results] + suspect_lines(item.text, item.ocr_result)
        boxes = line_boxes(item.ocr_result, item.spans, hits)
        image = item.image
        if boxes:
            draw = ImageDraw.Draw(image)
            fill = 0 if image.mode == "L" else (0,) * len(image.getbands())
            for x0, y0, x1, y1 in boxes:
                draw.rectangle((x0 - BOX_MARGIN, y0 - BOX_MARGIN, x1 + BOX_MARGIN, y1 + BOX_MARGIN), fill=fill)
        found["image-text-boxes"] += len(boxes)
        return image

    def _blur_faces(self, image: Image.Image, found: Counter) -> Image.Image:
        gray = numpy.asarray(image.convert("L"))
        for x, y, width, height in self.faces.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4):
            box = (int(x), int(y), int(x + width), int(y + height))
            image.paste(image.crop(box).filter(GaussianBlur(float(max(width, height)) / 6)), box)
            found["faces-blurred"] += 1
        return image
