"""Captions for toy scenes: counts and attributes, never positions.

Filler and unknown words are mixed in during training so that layout or style phrases in a
user's prompt ("left of", "at night") do not derail the model; they carry no information.
"""

from __future__ import annotations

import random

from scenewright.toyworld.scene import Group
from scenewright.toyworld.vocab import NUMBER_WORDS, SHAPES

_PREFIXES = ("a picture of ", "an image of ", "a photo of ", "the scene: ")
_SUFFIXES = (" at night", " on a black background", " in the scene", " in the background")
_RELATION_FILLER = ("left of", "right of", "above", "below", "next to", "beside", "on top of", "under")
# What an empty scene is called in training; the tiny backend's background prompt is the first.
EMPTY_CAPTIONS = ("a black background", "black background", "the black background", "a dark background")
_UNKNOWN = ("zebra", "quickly", "vase", "table", "lamp", "sky", "xyz", "cat", "tree", "blurry")


def empty_caption(rng: random.Random) -> str:
    """A caption for a scene with no objects: it teaches the model what "nothing here" is, which
    regional and Stitch need for the background (an empty prompt would ask for any scene)."""
    return rng.choice(EMPTY_CAPTIONS)


def phrase(group: Group, rng: random.Random | None = None) -> str:
    """ "three red circles", "a blue star", "an orange ring"."""
    noun = group.shape if group.count == 1 else SHAPES[group.shape]
    if group.count == 1:
        article = "an" if group.color[0] in "aeiou" else "a"
        if rng is not None and rng.random() < 0.1:
            article = "one"
        return f"{article} {group.color} {noun}"
    count = NUMBER_WORDS[group.count]
    if rng is not None and rng.random() < 0.1:
        count = str(group.count)
    return f"{count} {group.color} {noun}"


def caption(groups: list[Group], rng: random.Random | None = None) -> str:
    """Name every group; with ``rng``, shuffle groups and sprinkle meaningless filler."""
    groups = list(groups)
    if rng is not None:
        rng.shuffle(groups)
    parts = [phrase(g, rng) for g in groups]
    if rng is None or len(parts) == 1:
        text = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]
    else:
        text = parts[0]
        for index, part in enumerate(parts[1:], start=1):
            roll = rng.random()
            if roll < 0.12:
                glue = f" {rng.choice(_RELATION_FILLER)} "
            elif roll < 0.2:
                glue = " with "
            elif index < len(parts) - 1:
                glue = ", "
            else:
                glue = " and "
            text += glue + part
    if rng is not None:
        if rng.random() < 0.12:
            text = rng.choice(_PREFIXES) + text
        if rng.random() < 0.12:
            text += rng.choice(_SUFFIXES)
        if rng.random() < 0.08:
            words = text.split()
            words.insert(rng.randrange(len(words) + 1), rng.choice(_UNKNOWN))
            text = " ".join(words)
    return text
