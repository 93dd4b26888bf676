"""Image PII: rebuild every image from its pixels (no metadata survives), fill burned-in PII text, blur faces."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy
import regex
from PIL import Image, ImageDraw
from PIL.ImageFilter import GaussianBlur
from presidio_image_redactor import ImageAnalyzerEngine

from privacy.pii.ocr import OcrUnavailable, TesserocrOCR
from privacy.pii.text import KnownTerms, PiiUnavailable, TextFilter

Span = tuple[int, int]
ANCHOR_CONFIDENCE = 60  # a name-like OCR line needs one word read this confidently
MIN_WORD_CONFIDENCE = 40  # below: hidden from the analyzer (noise), still matched against known names
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


def _layout(ocr_result: dict) -> tuple[str, str, list[tuple[int, int]]]:
    """All words as text (one line per OCR line), the same text with low-confidence words blanked, word spans."""
    text, masked, spans, previous_line = "", "", [], None
    for word, line, confidence in zip(ocr_result["text"], ocr_result["line_num"], ocr_result["conf"]):
        if text:
            separator = " " if line == previous_line else "\n"
            text, masked = text + separator, masked + separator
        spans.append((len(text), len(text) + len(word)))
        text += word
        masked += word if confidence >= MIN_WORD_CONFIDENCE else " " * len(word)
        previous_line = line
    return text, masked, spans


# Words burned into scans that are not names (views, positions, modalities, markers).
ANNOTATION_WORDS = frozenset(
    {
        *("PORTABLE", "CHEST", "AP", "PA", "LAT", "LATERAL", "SUPINE", "ERECT", "UPRIGHT", "PRONE", "DECUBITUS"),
        *("LEFT", "RIGHT", "VIEW", "FRONTAL", "AXIAL", "CORONAL", "SAGITTAL", "SCOUT", "CT", "MR", "MRI", "XR"),
        *("CR", "DX", "US", "PET", "SPECT", "ABDOMEN", "PELVIS", "HEAD", "NECK", "SPINE", "KNEE", "HIP", "HAND"),
        *("FOOT", "WRIST", "SHOULDER", "ELBOW", "ANKLE", "SKULL", "INSPIRATION", "EXPIRATION", "POST", "PRE"),
        *("CONTRAST", "STANDING", "SITTING", "MARKER", "SCALE"),
    }
)
_OCR_WORD = regex.compile(r"[\p{L}\d&*'‘’“”\"^.,:;-]+")  # digits: OCR reads A as 4, O as 0
_MERGED_NAME = regex.compile(r"\p{Lu}{11,}")  # 'FAMILY^GIVEN' with '^' read as a letter: one long token
_PERSON_NAME_SEPARATOR = regex.compile(r"[\p{L}'’-]{2,}[\^*“”‘\"~]+[\p{L}'’-]{2,}")  # DICOM 'FAMILY^GIVEN', '^' misread


def _name_like_lines(text: str, anchored: list[bool]) -> list[Span]:
    """OCR lines that read like a burned-in name: two to four words of letters (OCR confusions allowed),
    at least two of three letters or more, not all scan annotation words; or one 'FAMILY^GIVEN' word.
    Only two-to-four-word lines with one confidently read word count: noise read off shapes has none."""
    spans, position = [], 0
    for line, confident in zip(text.split("\n"), anchored):
        words = line.split()
        lettered = [word for word in words if sum(character.isalpha() for character in word) >= 3]
        is_name_line = (
            2 <= len(words) <= 4
            and all(_OCR_WORD.fullmatch(word) for word in words)
            and len(lettered) >= 2
            and not all(word.strip(".,:;").upper() in ANNOTATION_WORDS for word in lettered)
        )
        name_word = any(
            _PERSON_NAME_SEPARATOR.fullmatch(word) or (_MERGED_NAME.fullmatch(word) and word not in ANNOTATION_WORDS)
            for word in words
        )
        if (confident and is_name_line) or name_word:
            spans.append((position, position + len(line)))
        position += len(line) + 1
    return spans


def _title_cased(text: str) -> str:
    """Each all-lower or all-upper word of letters capitalized, same length: OCR loses case, names need it."""

    def word(match: regex.Match) -> str:
        token = match.group()
        titled = token[:1].upper() + token[1:].lower()
        return titled if len(titled) == len(token) and (token.islower() or token.isupper()) else token

    return regex.sub(r"(?<!\S)\p{L}+(?=[\s,.:;]|$)", word, text)


def _line_boxes(ocr_result: dict, spans: list[Span], hits: list[Span]) -> list[tuple[int, int, int, int]]:
    """Boxes of every OCR line holding a PII span: the whole line goes, so a misread neighbour cannot leak."""
    hit_lines = {
        line
        for line, span in zip(ocr_result["line_num"], spans)
        if any(span[0] < end and start < span[1] for start, end in hits)
    }
    boxes: dict[int, list[int]] = {}
    for left, top, width, height, line in zip(
        ocr_result["left"], ocr_result["top"], ocr_result["width"], ocr_result["height"], ocr_result["line_num"]
    ):
        if line in hit_lines:
            box = boxes.setdefault(line, [left, top, left + width, top + height])
            box[:] = [min(box[0], left), min(box[1], top), max(box[2], left + width), max(box[3], top + height)]
    return [tuple(box) for box in boxes.values()]


class ImageFilter:
    """Pixels-only rebuild, OCR redaction of burned-in PII (presidio-image-redactor + tesseract), face blur."""

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

    def clean(self, image: Image.Image, *known: KnownTerms) -> tuple[Image.Image, Counter]:
        """The image without metadata, burned-in PII filled black, faces blurred; counts of what was found."""
        found: Counter = Counter()
        image = rebuilt(image)
        if self.ocr is not None:
            image = self._redact_text(image, known, found)
        if self.faces is not None:
            image = self._blur_faces(image, found)
        return image, found

    def _redact_text(self, image: Image.Image, known: tuple[KnownTerms, ...], found: Counter) -> Image.Image:
        ocr_result = ImageAnalyzerEngine.remove_space_boxes(self.ocr.perform_ocr(image))
        text, masked, spans = _layout(ocr_result)
        if not text:
            return image
        results = self.text_filter.analyze([_title_cased(masked)])[0]
        results += [result for terms in known for result in terms.results(text, whole_words=False)]
        found.update(result.entity_type for result in results)
        best = {}
        for line, confidence in zip(ocr_result["line_num"], ocr_result["conf"]):
            best[line] = max(best.get(line, 0.0), confidence)
        name_lines = _name_like_lines(text, [best[line] >= ANCHOR_CONFIDENCE for line in sorted(best)])
        found["PERSON"] += len(name_lines)
        boxes = _line_boxes(ocr_result, spans, [(result.start, result.end) for result in results] + name_lines)
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
