"""Burned-in text: the OCR words as analyzable text, the lines filled whatever is found in them, the boxes to fill."""

from __future__ import annotations

import regex
from rapidfuzz import fuzz, process

Span = tuple[int, int]
ANCHOR_CONFIDENCE = 60  # a wordy OCR line needs one word read this confidently: noise read off shapes has none
MIN_WORD_CONFIDENCE = 40  # below: hidden from the analyzer (noise) unless it holds a digit; known names still match
MIN_LINE_LETTERS = 4  # a confidently read line with this many letters outside annotation words may name someone
MIN_LINE_DIGITS = 5  # a burned-in line with this many digits holds an identifier or a date
MISREAD_MIN_LENGTH = 5  # shorter words have too many neighbours to compare loosely
MISREAD_SCORE = 80  # rapidfuzz ratio: one substituted letter in five


def misread_of(word: str, choices: list[str]) -> bool:
    """Whether OCR may have read one of choices as word (about one misread letter in five)."""
    return len(word) >= MISREAD_MIN_LENGTH and bool(
        process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=MISREAD_SCORE)
    )


def _has_digit(word: str) -> bool:
    return any(character.isdigit() for character in word)


def layout(ocr_result: dict) -> tuple[str, str, list[tuple[int, int]]]:
    """All words as text (one line per OCR line), the same text with low-confidence words blanked (those holding
    a digit stay: small identifiers are read with low confidence, noise seldom reads as digits), word spans."""
    text, masked, spans, previous_line = "", "", [], None
    for word, line, confidence in zip(ocr_result["text"], ocr_result["line_num"], ocr_result["conf"]):
        if text:
            separator = " " if line == previous_line else "\n"
            text, masked = text + separator, masked + separator
        spans.append((len(text), len(text) + len(word)))
        text += word
        masked += word if confidence >= MIN_WORD_CONFIDENCE or _has_digit(word) else " " * len(word)
        previous_line = line
    return text, masked, spans


# Words burned into scans that are not names (views, positions, modalities, markers, acquisition terms).
ANNOTATION_WORDS = frozenset(
    {
        *("PORTABLE", "CHEST", "AP", "PA", "LAT", "LATERAL", "SUPINE", "ERECT", "UPRIGHT", "PRONE", "DECUBITUS"),
        *("LEFT", "RIGHT", "VIEW", "FRONTAL", "AXIAL", "CORONAL", "SAGITTAL", "SCOUT", "CT", "MR", "MRI", "XR"),
        *("CR", "DX", "US", "PET", "SPECT", "ABDOMEN", "PELVIS", "HEAD", "NECK", "SPINE", "KNEE", "HIP", "HAND"),
        *("FOOT", "WRIST", "SHOULDER", "ELBOW", "ANKLE", "SKULL", "INSPIRATION", "EXPIRATION", "POST", "PRE"),
        *("CONTRAST", "STANDING", "SITTING", "MARKER", "SCALE", "OBLIQUE", "BILATERAL", "SERIES", "IMAGE", "SLICE"),
        *("PHASE", "ARTERIAL", "VENOUS", "DELAYED", "WINDOW", "LEVEL", "ZOOM", "THICKNESS", "TRANSVERSE"),
    }
)
_ANNOTATIONS = sorted(ANNOTATION_WORDS)
_PUNCTUATION = ".,:;!'\"-"  # stripped from an OCR word's ends before it is compared
_MERGED_NAME = regex.compile(r"\p{Lu}{11,}")  # 'FAMILY^GIVEN' with '^' read as a letter: one long token
_PERSON_NAME_SEPARATOR = regex.compile(r"[\p{L}'’-]{2,}[\^*“”‘\"~]+[\p{L}'’-]{2,}")  # DICOM 'FAMILY^GIVEN', '^' misread


def _anchored_lines(ocr_result: dict) -> list[bool]:
    """Per OCR line, in order: whether one of its words was read with ANCHOR_CONFIDENCE or more."""
    best: dict[int, float] = {}
    for line, confidence in zip(ocr_result["line_num"], ocr_result["conf"]):
        best[line] = max(best.get(line, 0.0), confidence)
    return [best[line] >= ANCHOR_CONFIDENCE for line in sorted(best)]


def _annotation(word: str) -> bool:
    """A scan annotation word, also when misread by one letter in five."""
    word = word.strip(_PUNCTUATION).upper()
    if word in ANNOTATION_WORDS:
        return True
    return misread_of(word, _ANNOTATIONS)


def _name_word(word: str) -> bool:
    """A DICOM 'FAMILY^GIVEN' name, '^' misread or merged into one long word of capitals."""
    word = word.strip(_PUNCTUATION)
    return bool(_PERSON_NAME_SEPARATOR.fullmatch(word) or (_MERGED_NAME.fullmatch(word) and not _annotation(word)))


def suspect_lines(text: str, ocr_result: dict) -> list[Span]:
    """OCR lines filled whatever the analyzer finds in them: those holding MIN_LINE_DIGITS digits or a
    'FAMILY^GIVEN' word, and those with one confidently read word and MIN_LINE_LETTERS letters outside scan
    annotation words. OCR misreads small burned-in text ('{tzel Haile', 'MRNAS306699') beyond what NER and
    patterns recognize; a harmless label lost costs little."""
    spans, position = [], 0
    for line, confident in zip(text.split("\n"), _anchored_lines(ocr_result)):
        words = line.split()
        digits = sum(character.isdigit() for character in line)
        letters = sum(character.isalpha() for word in words if not _annotation(word) for character in word)
        if (
            digits >= MIN_LINE_DIGITS
            or any(_name_word(word) for word in words)
            or (confident and letters >= MIN_LINE_LETTERS)
        ):
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
