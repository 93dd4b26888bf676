"""OCR for presidio-image-redactor, backed by Debian's tesseract-ocr language data through tesserocr's C API.

presidio-image-redactor's own TesseractOCR starts a tesseract process per image (about 0.2 s); the C API
keeps one engine loaded (about 10 ms per small image). Results use pytesseract's image_to_data layout.
Burned-in text sits on anatomy or product, not on a clean page: tesseract reads pages of isolated strokes,
each candidate line in the polarity it is drawn in (privacy.pii.text_regions).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy
import tesserocr
from PIL import Image

from privacy.pii.redactor import OCR
from privacy.pii.text_regions import text_pages

LANGUAGE = "eng"
TESSDATA_GLOBS = ("/usr/share/tesseract-ocr/*/tessdata", "/usr/share/tessdata", "/usr/local/share/tessdata")
MIN_OCR_SIDE = 200  # smaller images are upscaled: tesseract needs text about 10 px high or more


def find_tessdata(language: str = LANGUAGE) -> Path | None:
    """The folder holding <language>.traineddata: $TESSDATA_PREFIX, else Debian's tesseract-ocr location."""
    candidates = [Path(os.environ["TESSDATA_PREFIX"])] if os.environ.get("TESSDATA_PREFIX") else []
    for pattern in TESSDATA_GLOBS:
        candidates += sorted(Path("/").glob(pattern.lstrip("/")), reverse=True)
    return next((folder for folder in candidates if (folder / f"{language}.traineddata").is_file()), None)


class OcrUnavailable(RuntimeError):
    """No OCR engine can run (tesseract language data missing or unloadable)."""


class TesserocrOCR(OCR):
    """Word boxes, text, confidence and line ids of an image, in pytesseract's image_to_data layout."""

    def __init__(self, language: str = LANGUAGE) -> None:
        tessdata = find_tessdata(language)
        if tessdata is None:
            raise OcrUnavailable(f"tesseract language data '{language}' not found (apt-get install tesseract-ocr)")
        try:
            self.api = tesserocr.PyTessBaseAPI(path=str(tessdata), lang=language, psm=tesserocr.PSM.SPARSE_TEXT)
            self.api.SetVariable("tessedit_do_invert", "0")  # pages are binarized black on white already
        except RuntimeError as error:
            raise OcrUnavailable(f"tesseract cannot start ({error})") from None

    def perform_ocr(self, image: object, **kwargs) -> dict:
        """OCR one PIL image; boxes are in the image's own pixel coordinates; line ids are unique per image."""
        assert isinstance(image, Image.Image)
        scale = max(1, -(-MIN_OCR_SIDE // min(image.size)))
        work = image.convert("L")
        if scale > 1:
            work = work.resize((work.width * scale, work.height * scale), Image.Resampling.LANCZOS)
        result: dict[str, list] = {key: [] for key in ("left", "top", "width", "height", "text", "conf", "line_num")}
        for page in text_pages(numpy.asarray(work)):
            self._read(Image.fromarray(page), scale, result)
        return result

    def _read(self, page: Image.Image, scale: int, result: dict[str, list]) -> None:
        self.api.SetImage(page)
        self.api.Recognize()
        level = tesserocr.RIL.WORD
        iterator = self.api.GetIterator()
        line = max(result["line_num"], default=0)
        for word in tesserocr.iterate_level(iterator, level):
            if word.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
                line += 1
            box = word.BoundingBox(level)
            text = word.GetUTF8Text(level) if box else ""
            if not box or not text or not text.strip():
                continue
            x0, y0, x1, y1 = (value / scale for value in box)
            result["left"].append(int(x0))
            result["top"].append(int(y0))
            result["width"].append(int(-(-(x1 - x0) // 1)))
            result["height"].append(int(-(-(y1 - y0) // 1)))
            result["text"].append(text)
            result["conf"].append(word.Confidence(level))
            result["line_num"].append(line)
