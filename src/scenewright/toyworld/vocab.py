"""Words the embedded model knows. Anything else maps to ``[UNK]`` and the CLI says so."""

from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 235),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (150, 60, 200),
    "cyan": (40, 220, 230),
    "white": (245, 245, 245),
}
SHAPES: dict[str, str] = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "heart": "hearts",
    "ring": "rings",
}
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
SIZES = ("small", "large", "big", "tiny")
GLUE = ("a", "an", "and", "with", "of", "the", "some")
# Words seen as filler during training so that layout or style phrases do not derail the model;
# the placement itself comes from our methods, never from the model.
FILLER = (
    "left", "right", "above", "below", "next", "to", "on", "top", "under", "beside", "in", "at",
    "night", "picture", "image", "photo", "scene", "background", "black", "dark", "is", "are",
)  # fmt: skip

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)


def vocabulary() -> list[str]:
    """Every known word, specials first (so their ids are stable: PAD 0, UNK 1, BOS 2, EOS 3)."""
    words: list[str] = []
    for group in (
        COLORS,
        list(SHAPES) + list(SHAPES.values()),
        NUMBER_WORDS.values(),
        SIZES,
        GLUE,
        FILLER,
        [str(n) for n in NUMBER_WORDS],
    ):
        for word in group:
            if word not in words:
                words.append(word)
    return list(SPECIAL_TOKENS) + words
