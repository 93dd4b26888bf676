"""Burned-in text: the OCR words as analyzable text, lines that read like names, and the boxes to fill."""

from __future__ import annotations

import regex

Span = tuple[int, int]
ANCHOR_CONFIDENCE = 60  # a name-like OCR line needs one word read this confidently
MIN_WORD_CONFIDENCE = 40  # below: hidden from the analyzer (noise), still matched against known names


def layout(ocr_result: dict) -> tuple[str, str, list[tuple[int, int]]]:
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


def _anchored_lines(ocr_result: dict) -> list[bool]:
    """Per OCR line, in order: whether one of its words was read with ANCHOR_CONFIDENCE or more."""
    best: dict[int, float] = {}
    for line, confidence in zip(ocr_result["line_num"], ocr_result["conf"]):
        best[line] = max(best.get(line, 0.0), confidence)
    return [best[line] >= ANCHOR_CONFIDENCE for line in sorted(best)]


def name_like_lines(text: str, ocr_result: dict) -> list[Span]:
    """OCR lines that read like a burned-in name: two to four words of letters (OCR confusions allowed),
    at least two of three letters or more, not all scan annotation words; or one 'FAMILY^GIVEN' word.
    Only two-to-four-word lines with one confidently read word count: noise read off shapes has none."""
    spans, position = [], 0
    for line, confident in zip(text.split("\n"), _anchored_lines(ocr_result)):
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


def title_cased(text: str) -> str:
    """Each all-lower or all-upper word of letters capitalized, same length: OCR loses case, names need it."""

    def word(match: regex.Match) -> str:
        token = match.group()
        titled = token[:1].upper() + token[1:].lower()
        return titled if len(titled) == len(token) and (token.islower() or token.isupper()) else token

    return regex.sub(r"(?<!\S)\p{L}+(?=[\s,.:;]|$)", word, text)


def line_boxes(ocr_result: dict, spans: list[Span], hits: list[Span]) -> list[tuple[int, int, int, int]]:
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
