"""GenEval-style prompts of six kinds with their ground truth, for testing the rules planner.

Written for this project after GenEval's task kinds (single object, two objects, counting,
colours, position, colour attribution) over COCO class names and the toy world's shapes; half
the prompts use GenEval's own template ("a photo of ..."), half other common phrasings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import inflect

from scenewright.toyworld.vocab import SHAPES

KINDS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")

COCO = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
NOUNS = (*COCO, *SHAPES)
# Nouns that are plural in form: fine with "a", not in counting prompts.
PLURAL_FORM = frozenset({"skis", "scissors"})
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "cyan")
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
RELATIONS = {
    "left of": ("left of", "to the left of", "on the left of", "on the left side of"),
    "right of": ("right of", "to the right of", "on the right of", "on the right side of"),
    "above": ("above", "above", "over", "above"),
    "below": ("below", "below", "below", "below"),
    "on": ("on", "on top of", "sitting on", "on"),
    "under": ("under", "beneath", "underneath", "under"),
    "next to": ("next to", "beside", "next to", "near"),
}
_engine = inflect.engine()


@dataclass
class Expected:
    """Ground truth of one prompt."""

    kind: str
    prompt: str
    objects: list[tuple[str, int, str | None]]  # name, count, colour
    relations: list[tuple[int, str, int]] = field(default_factory=list)


def _a(noun: str) -> str:
    return _engine.a(noun)


def _plural(noun: str) -> str:
    words = noun.split()
    return " ".join([*words[:-1], _engine.plural_noun(words[-1])])


def _lead(rng: random.Random) -> str:
    return "a photo of " if rng.random() < 0.5 else rng.choice(("", "", "an image of ", "there is "))


def generate(kind: str, n: int, seed: int = 0) -> list[Expected]:
    """``n`` prompts of one kind, reproducible for a seed."""
    rng = random.Random(f"{kind}-{seed}")
    out: list[Expected] = []
    for _ in range(n):
        a, b = rng.sample(NOUNS, 2)
        c1, c2 = rng.sample(COLORS, 2)
        lead = _lead(rng)
        if kind == "single_object":
            out.append(Expected(kind, f"{lead}{_a(a)}", [(a, 1, None)]))
        elif kind == "two_object":
            glue = rng.choice((" and ", " and ", " with ", ", "))
            out.append(Expected(kind, f"{lead}{_a(a)}{glue}{_a(b)}", [(a, 1, None), (b, 1, None)]))
        elif kind == "counting":
            while a in PLURAL_FORM:
                a = rng.choice(NOUNS)
            count = rng.choice(list(NUMBERS))
            word = NUMBERS[count] if rng.random() < 0.8 else str(count)
            lead = "a photo of " if rng.random() < 0.5 else rng.choice(("", "there are "))
            out.append(Expected(kind, f"{lead}{word} {_plural(a)}", [(a, count, None)]))
        elif kind == "colors":
            out.append(Expected(kind, f"{lead}{_a(c1 + ' ' + a)}", [(a, 1, c1)]))
        elif kind == "position":
            rel = rng.choice(list(RELATIONS))
            phrase = rng.choice(RELATIONS[rel])
            out.append(
                Expected(kind, f"{lead}{_a(a)} {phrase} {_a(b)}", [(a, 1, None), (b, 1, None)], [(0, rel, 1)])
            )
        elif kind == "color_attr":
            glue = rng.choice((" and ", " and ", " with "))
            text = f"{lead}{_a(c1 + ' ' + a)}{glue}{_a(c2 + ' ' + b)}"
            out.append(Expected(kind, text, [(a, 1, c1), (b, 1, c2)]))
        else:
            raise ValueError(kind)
    return out
