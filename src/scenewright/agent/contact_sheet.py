"""One PNG with every seed's image and, under each, its seed and verdict: pick a seed at a glance."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from scenewright.tools.grid import clip_text, fit_tile

TILE = 192  # small images are scaled up to this (nearest: pixels stay pixels), large ones down
LABEL_HEIGHT = 34
TITLE_HEIGHT = 28
GAP = 6
MAX_COLUMNS = 8
TEXT = (235, 235, 235)
BACKGROUND = (40, 40, 40)
VERDICT_COLOURS = {"matches the plan": (90, 200, 110), "differs from the plan": (230, 90, 80)}


@dataclass(frozen=True)
class Tile:
    """One image on the sheet and what is written under it."""

    image: Image.Image
    seed: int
    verdict: str


def contact_sheet(tiles: Sequence[Tile], title: str = "", tile: int = TILE) -> Image.Image:
    """A grid of ``tiles``, each labelled "seed N" and its verdict, under an optional title."""
    if not tiles:
        raise ValueError("a contact sheet needs at least one image")
    count = len(tiles)
    # One row up to four; then two rows up to sixteen (4x2 for eight seeds); then rows of eight.
    columns = count if count <= 4 else min(MAX_COLUMNS, math.ceil(count / 2))
    rows = math.ceil(len(tiles) / columns)
    top = TITLE_HEIGHT if title else 0
    sheet = Image.new(
        "RGB",
        (GAP + columns * (tile + GAP), top + GAP + rows * (tile + LABEL_HEIGHT + GAP)),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    if title:
        draw.text((GAP, 7), clip_text(draw, title, font, sheet.width - 2 * GAP), fill=TEXT, font=font)
    for index, item in enumerate(tiles):
        x = GAP + (index % columns) * (tile + GAP)
        y = top + GAP + (index // columns) * (tile + LABEL_HEIGHT + GAP)
        picture = fit_tile(item.image, tile)
        sheet.paste(picture, (x + (tile - picture.width) // 2, y + (tile - picture.height) // 2))
        draw.text((x, y + tile + 2), f"seed {item.seed}", fill=TEXT, font=font)
        colour = VERDICT_COLOURS.get(item.verdict, TEXT)
        draw.text((x, y + tile + 17), clip_text(draw, item.verdict, font, tile), fill=colour, font=font)
    return sheet


def write_contact_sheet(tiles: Sequence[Tile], path: Path, title: str = "") -> Path:
    """Save the sheet of ``tiles`` at ``path`` (a plain PNG: the tiles carry their own metadata)."""
    from scenewright.tools.output import atomic_write_bytes

    buffer = io.BytesIO()
    contact_sheet(tiles, title).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
