"""Where burned-in text lies and which polarity it has, so that OCR reads each line once.

Burned-in text is brighter or darker than what lies under it. A morphological top-hat isolates thin bright
strokes and a black-hat thin dark ones. For text of one polarity the other map holds the gaps between its
letters, which OCR reads as garbage at the cost of a real line. Each candidate line is therefore kept in
the polarity whose strokes stand out from the local background (the pixels in neither map); a line whose
two polarities stand out about equally is kept in both. Pixels outside every candidate line are dropped.
"""

from __future__ import annotations

import cv2
import numpy

STROKE_KERNEL = 7  # top-hat window in OCR pixels: wider than a stroke, narrower than thin anatomy (11 let slivers in)
POLARITIES = (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT)  # bright strokes, dark strokes
MIN_CHARACTER_SIDE = 3  # smaller components are specks, not letters (they still travel inside a line)
MIN_LINE_HEIGHT = 6  # lower candidates are illegible at OCR scale
WORD_GAP = 15  # letters and words closer than this (OCR pixels) form one candidate line
AMBIGUOUS = 0.7  # a line whose other polarity stands out at least this much as well is kept in both


def stroke_maps(gray: numpy.ndarray) -> list[numpy.ndarray]:
    """Per polarity, thin strokes as a 0/1 map (top-hat or black-hat, binarized with Otsu)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (STROKE_KERNEL, STROKE_KERNEL))
    maps = []
    for operation in POLARITIES:
        strokes = cv2.morphologyEx(gray, operation, kernel)
        maps.append(cv2.threshold(strokes, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1])
    return maps


def line_candidates(ink: numpy.ndarray) -> numpy.ndarray:
    """Boxes (x0, y0, x1, y1) of letter-sized components joined into lines; larger shapes are not text."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    letter = (heights <= max(80, min(ink.shape) // 6)) & (numpy.maximum(heights, widths) >= MIN_CHARACTER_SIDE)
    letter[0] = False  # the background
    joined = cv2.dilate(letter[labels].astype(numpy.uint8), numpy.ones((3, WORD_GAP), numpy.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    x, y, width, height = (stats[1:, index] for index in range(4))
    tall_enough = height >= MIN_LINE_HEIGHT
    return numpy.stack([x, y, x + width, y + height], axis=1)[tall_enough]


def _padded(boxes: numpy.ndarray, shape: tuple[int, int]) -> numpy.ndarray:
    """Each box grown by half its height (at least 4 px), so it holds background around the strokes."""
    pad = numpy.maximum(4, (boxes[:, 3] - boxes[:, 1]) // 2)[:, None]
    grown = boxes + numpy.concatenate([-pad, -pad, pad, pad], axis=1)
    return numpy.clip(grown, 0, [shape[1], shape[0], shape[1], shape[0]])


class _BoxMeans:
    """Mean brightness of each polarity's strokes and of the background inside boxes (integral images)."""

    def __init__(self, gray: numpy.ndarray, inks: list[numpy.ndarray]) -> None:
        background = (1 - (inks[0] | inks[1])).astype(numpy.uint8)
        masks = [*inks, background]
        self.counts = [cv2.integral(mask, sdepth=cv2.CV_64F) for mask in masks]
        self.sums = [cv2.integral(gray * mask, sdepth=cv2.CV_64F) for mask in masks]

    @staticmethod
    def _in_boxes(integral: numpy.ndarray, boxes: numpy.ndarray) -> numpy.ndarray:
        x0, y0, x1, y1 = boxes.T
        return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]

    def contrasts(self, boxes: numpy.ndarray) -> numpy.ndarray:
        """Per box and polarity, how far that polarity's strokes stand out from the background (N x 2)."""
        counts = numpy.stack([self._in_boxes(integral, boxes) for integral in self.counts], axis=1)
        sums = numpy.stack([self._in_boxes(integral, boxes) for integral in self.sums], axis=1)
        means = sums / numpy.maximum(counts, 1)
        background = numpy.where(counts[:, 2] > 0, means[:, 2], (means[:, 0] + means[:, 1]) / 2)
        bright = numpy.where(counts[:, 0] > 0, means[:, 0] - background, 0.0)
        dark = numpy.where(counts[:, 1] > 0, background - means[:, 1], 0.0)
        return numpy.stack([bright, dark], axis=1)


def text_pages(gray: numpy.ndarray) -> list[numpy.ndarray]:
    """Black-on-white pages holding every candidate line's strokes in its polarity: usually one page; a second
    holds the lines that overlap a line kept in the other polarity (or a line kept in both)."""
    inks = stroke_maps(gray)
    means = _BoxMeans(gray, inks)
    pages = [numpy.zeros_like(gray), numpy.zeros_like(gray)]
    taken = numpy.zeros_like(gray)  # where the first page holds bright strokes
    for polarity, ink in enumerate(inks):
        boxes = _padded(line_candidates(ink), gray.shape)
        contrasts = means.contrasts(boxes)
        kept = contrasts[:, polarity] >= AMBIGUOUS * contrasts[:, 1 - polarity]
        for x0, y0, x1, y1 in boxes[kept]:
            region = (slice(y0, y1), slice(x0, x1))
            page = pages[1] if polarity == 1 and taken[region].any() else pages[0]
            page[region] |= ink[region]
            if polarity == 0:
                taken[region] = 1
    return [(1 - page) * 255 for page in pages if page.any()]
