"""Pictures that explain a render: the plan's boxes over the image, and per-object attention maps.

Both are upscaled with nearest-neighbour sampling so that a 64x64 image from the embedded model
is readable at a glance; the pixels stay as generated, only bigger.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from scenewright.arrays import to_numpy
from scenewright.planner.plan import Plan
from scenewright.tools.output import save_png

MIN_SIDE = 512  # overlays are drawn at least this large
CELL = 192  # side of one attention map in the sheet


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _colour(index: int) -> tuple[int, int, int]:
    """Distinct, bright outline colours that stay visible on the toy world's black background."""
    hue = (index * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def upscale(image: Image.Image, min_side: int = MIN_SIDE) -> Image.Image:
    """The image enlarged by a whole factor (nearest neighbour) until its short side is ``min_side``."""
    rgb = image.convert("RGB")
    factor = max(1, -(-min_side // max(1, min(rgb.size))))
    if factor == 1:
        return rgb
    return rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.NEAREST)


def layout_overlay(image: Image.Image, plan: Plan, min_side: int = MIN_SIDE) -> Image.Image:
    """The plan's boxes with ``name #k`` labels drawn over an upscaled copy of ``image``."""
    canvas = upscale(image, min_side)
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    font = _font(max(12, min(width, height) // 32))
    line = max(2, min(width, height) // 200)
    for index, obj in enumerate(plan.objects):
        colour = _colour(index)
        label_base = " ".join([*obj.attributes, obj.name])
        for k, (x0, y0, x1, y1) in enumerate(obj.boxes):
            box = (x0 * width, y0 * height, x1 * width, y1 * height)
            draw.rectangle(box, outline=colour, width=line)
            label = label_base if obj.count == 1 else f"{label_base} #{k + 1}"
            left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
            text_w, text_h = right - left, bottom - top
            tx = min(max(0.0, box[0]), max(0.0, width - text_w - 4))
            ty = box[1] - text_h - 4 if box[1] >= text_h + 4 else box[1]
            draw.rectangle((tx, ty, tx + text_w + 4, ty + text_h + 4), fill=colour)
            draw.text((tx + 2 - left, ty + 2 - top), label, fill=(0, 0, 0), font=font)
    return canvas


def _as_map(value: Any) -> np.ndarray | None:
    """A 2-D float array from a numpy array, a torch tensor or nested lists; None if not 2-D."""
    if hasattr(value, "detach"):
        value = to_numpy(value)
    array = np.asarray(value, dtype=np.float32)
    array = np.squeeze(array)
    if array.ndim != 2 or array.size == 0:
        return None
    array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _heat(values: np.ndarray) -> np.ndarray:
    """A small black-red-yellow-white colour map (no matplotlib needed)."""
    r = np.clip(values * 3.0, 0, 1)
    g = np.clip(values * 3.0 - 1.0, 0, 1)
    b = np.clip(values * 3.0 - 2.0, 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def attention_sheet(
    maps: Mapping[str, Any], image: Image.Image | None = None, cell: int = CELL
) -> Image.Image | None:
    """One labelled heat map per object (after the image itself when given); None without maps."""
    tiles: list[tuple[str, Image.Image]] = []
    if image is not None:
        tiles.append(("image", image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)))
    for name, value in maps.items():
        array = _as_map(value)
        if array is None:
            continue
        heat = Image.fromarray(_heat(array)).resize((cell, cell), Image.Resampling.NEAREST)
        if image is not None:
            base = image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
            heat = Image.blend(base, heat, 0.7)
        tiles.append((name, heat))
    if len(tiles) == (1 if image is not None else 0):
        return None
    font = _font(max(12, cell // 12))
    label_h = cell // 6
    columns = min(4, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, (name, tile) in enumerate(tiles):
        x, y = (index % columns) * cell, (index // columns) * (cell + label_h)
        sheet.paste(tile, (x, y + label_h))
        draw.text((x + 4, y + 2), name[:28], fill=(240, 240, 240), font=font)
    return sheet


def write_overlay(
    image: Image.Image, plan: Plan, path: Path, metadata: dict[str, Any], overwrite: bool = False
) -> Path:
    """Write the layout overlay beside the image; returns the path actually written."""
    return save_png(layout_overlay(image, plan), path, metadata, overwrite)


def write_attention_sheet(
    maps: Mapping[str, Any] | None,
    path: Path,
    metadata: dict[str, Any],
    image: Image.Image | None = None,
    overwrite: bool = False,
) -> Path | None:
    """Write the attention-map sheet, or nothing (None) when no strategy produced maps."""
    if not maps:
        return None
    sheet = attention_sheet(maps, image)
    if sheet is None:
        return None
    return save_png(sheet, path, metadata, overwrite)
