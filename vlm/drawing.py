"""Primitive shapes drawn with Pillow, shared by the pre-training data and the scenarios."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 80, 220),
    "yellow": (230, 210, 40),
    "white": (240, 240, 240),
    "purple": (150, 60, 190),
}
SIZES: dict[str, float] = {"small": 0.09, "medium": 0.15, "large": 0.23}


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    centre: tuple[float, float],
    radius: float,
    fill: tuple[int, ...] | int,
) -> None:
    """Draw one filled shape of the given radius (pixels) around centre."""
    x, y = centre
    box = (x - radius, y - radius, x + radius, y + radius)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def side_centre(rng: random.Random, side: str, size_px: int, radius: float) -> tuple[float, float]:
    """A random centre in the left or right half, keeping the shape inside the image."""
    margin = radius + 1
    half = size_px / 2
    lo, hi = (margin, half - margin / 2) if side == "left" else (half + margin / 2, size_px - margin)
    return rng.uniform(lo, max(lo, hi)), rng.uniform(margin, size_px - margin)


def add_noise(image: Image.Image, rng: random.Random, amount: int) -> Image.Image:
    """Add uniform per-pixel noise of +-amount (deterministic under rng)."""
    if amount <= 0:
        return image
    noise = Image.frombytes(
        image.mode, image.size, rng.randbytes(image.size[0] * image.size[1] * len(image.getbands()))
    )
    return Image.blend(image, noise, amount / 255)
