"""Public synthetic image-text data for pre-training the tiny VLM: shapes, colours, counts, positions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageDraw

from vlm.drawing import COLOURS, SHAPES, SIZES, add_noise, draw_shape, side_centre

COUNT_WORDS = ("one", "two", "three")


@dataclass(frozen=True)
class Example:
    """One pre-training example: an image, a prompt and the text the model should produce."""

    image: Image.Image
    prompt: str
    target: str


def _scene(rng: random.Random, size_px: int) -> tuple[Image.Image, list[dict[str, str]]]:
    background = rng.choice([(0, 0, 0), (30, 30, 30), (70, 70, 70), (20, 20, 60)])
    image = Image.new("RGB", (size_px, size_px), background)
    draw = ImageDraw.Draw(image)
    objects = []
    sides = rng.sample(["left", "right"], k=2)
    for index in range(rng.choice([1, 1, 2])):
        shape, colour, size = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(SIZES))
        radius = SIZES[size] * size_px
        draw_shape(draw, shape, side_centre(rng, sides[index], size_px, radius), radius, COLOURS[colour])
        objects.append({"shape": shape, "colour": colour, "size": size, "side": sides[index]})
    if rng.random() < 0.5:
        image = image.convert("L").convert("RGB")
        for obj in objects:
            obj["colour"] = "gray"
    return add_noise(image, rng, rng.choice([0, 0, 20, 40])), objects


def _describe(obj: dict[str, str]) -> str:
    colour = "" if obj["colour"] == "gray" else f"{obj['colour']} "
    return f"a {obj['size']} {colour}{obj['shape']} on the {obj['side']}"


def _qa(rng: random.Random, objects: list[dict[str, str]]) -> tuple[str, str]:
    obj = rng.choice(objects)
    kind = rng.choice(["present", "absent", "side", "size", "colour", "count"])
    if kind == "present":
        return f"is there a {obj['shape']}?", "yes"
    if kind == "absent":
        missing = [s for s in SHAPES if s not in {o["shape"] for o in objects}]
        return f"is there a {rng.choice(missing)}?", "no"
    if kind == "side":
        return f"which side is the {obj['shape']} on?", obj["side"]
    if kind == "size":
        return f"what size is the {obj['shape']}?", obj["size"]
    if kind == "colour" and obj["colour"] != "gray":
        return f"what colour is the {obj['shape']}?", obj["colour"]
    return "how many shapes are there?", COUNT_WORDS[len(objects) - 1]


def examples(seed: int, size_px: int) -> Iterator[Example]:
    """An endless, seeded stream of captioning and VQA examples."""
    rng = random.Random(seed)
    while True:
        image, objects = _scene(rng, size_px)
        if rng.random() < 0.3:
            yield Example(image, "describe the image.", " and ".join(_describe(o) for o in objects) + ".")
        else:
            question, answer = _qa(rng, objects)
            yield Example(image, f"question: {question}", answer)


def tokenizer_corpus(vocabulary: tuple[str, ...]) -> list[str]:
    """Text the tokenizer is trained on: every template word, plus the preset's domain vocabulary."""
    words = sorted(vocabulary)
    rng = random.Random(0)
    stream = examples(seed=0, size_px=32)
    lines = [f"{ex.prompt} answer: {ex.target}" for ex, _ in zip(stream, range(2000))]
    lines += [" ".join(rng.sample(words, k=min(12, len(words)))) for _ in range(2000)]
    return lines
