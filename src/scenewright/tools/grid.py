"""An X/Y grid image: one render per cell, each column and row labelled with its axis value.

What A1111's X/Y plot and ComfyUI's grids give: the effect of one setting (guidance, steps, seed,
strategy) seen side by side. Small images are scaled up with nearest-neighbour (a 64 px toy image
stays its pixels), large ones down; every label is shortened to fit its cell rather than cut.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TILE = 192
GAP = 6
TITLE_HEIGHT = 28
HEADER_HEIGHT = 22
CAPTION_HEIGHT = 18
MAX_ROW_LABEL = 220  # px: a long row label (a strategy with options) is shortened to this
TEXT = (235, 235, 235)
BACKGROUND = (40, 40, 40)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def fit_tile(image: Image.Image, tile: int) -> Image.Image:
    """``image`` scaled so that its longer side is ``tile`` (nearest up, so pixels stay pixels)."""
    scale = tile / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return image.convert("RGB").resize(size, resample)


def clip_text(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


@dataclass(frozen=True)
class GridCell:
    """One cell: its image and a caption under it (e.g. the verdict) in ``colour``."""

    image: Image.Image
    caption: str = ""
    colour: tuple[int, int, int] = TEXT


def xy_grid(
    cells: Sequence[Sequence[GridCell]],
    x_labels: Sequence[str],
    y_labels: Sequence[str] = (),
    title: str = "",
    tile: int = TILE,
) -> Image.Image:
    """``cells[row][column]`` laid out under ``x_labels`` (one a column) and beside ``y_labels``
    (one a row; none for a single row), under an optional ``title``."""
    columns = len(x_labels)
    rows = len(cells)
    if columns == 0 or rows == 0 or any(len(row) != columns for row in cells):
        raise ValueError(f"a grid needs {max(rows, 1)} rows of {columns} cells, one a column label")
    if y_labels and len(y_labels) != rows:
        raise ValueError(f"{len(y_labels)} row labels for {rows} rows")
    font = ImageFont.load_default(size=13)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 0
    if y_labels:
        widest = max(measure.textlength(label, font=font) for label in y_labels)
        left = min(MAX_ROW_LABEL, int(widest) + 2 * GAP)
    top = (TITLE_HEIGHT if title else 0) + HEADER_HEIGHT
    cell_height = tile + CAPTION_HEIGHT
    sheet = Image.new(
        "RGB", (left + GAP + columns * (tile + GAP), top + GAP + rows * (cell_height + GAP)), BACKGROUND
    )
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((GAP, 7), clip_text(draw, title, font, sheet.width - 2 * GAP), fill=TEXT, font=font)
    for column, label in enumerate(x_labels):
        x = left + GAP + column * (tile + GAP)
        text = clip_text(draw, label, font, tile)
        width = draw.textlength(text, font=font)
        draw.text((x + (tile - width) / 2, top - HEADER_HEIGHT + 4), text, fill=TEXT, font=font)
    for row, items in enumerate(cells):
        y = top + GAP + row * (cell_height + GAP)
        if y_labels:
            text = clip_text(draw, y_labels[row], font, left - 2 * GAP)
            draw.text((GAP, y + tile / 2 - 7), text, fill=TEXT, font=font)
        for column, item in enumerate(items):
            x = left + GAP + column * (tile + GAP)
            picture = fit_tile(item.image, tile)
            sheet.paste(picture, (x + (tile - picture.width) // 2, y + (tile - picture.height) // 2))
            if item.caption:
                caption = clip_text(draw, item.caption, font, tile)
                draw.text((x, y + tile + 2), caption, fill=item.colour, font=font)
    return sheet


def write_xy_grid(
    cells: Sequence[Sequence[GridCell]],
    path: Path,
    x_labels: Sequence[str],
    y_labels: Sequence[str] = (),
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """Save :func:`xy_grid` at ``path`` (a plain PNG: each cell's image carries its own metadata)."""
    from scenewright.tools.output import atomic_write_bytes

    buffer = io.BytesIO()
    xy_grid(cells, x_labels, y_labels, title).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite)
