"""Drawing the toy world's shapes: one function both the scene renderer and the evaluator use.

Shapes are drawn axis-aligned in a square box at 4x resolution and box-filtered down, which
gives exact, anti-aliased edges and lets the evaluator render the very same templates.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4
Box = tuple[float, float, float, float]


def _star(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    outer = min(x1 - x0, y1 - y0) / 2
    inner = outer * 0.45
    points = []
    for k in range(10):
        radius = outer if k % 2 == 0 else inner
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + 1.06 * radius * math.sin(angle) + outer * 0.1))
    return points


def _heart(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    # The classic parametric heart, scaled into the box.
    ts = np.linspace(0, 2 * math.pi, 80, endpoint=False)
    xs = 16 * np.sin(ts) ** 3
    ys = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
    xs = (xs - xs.min()) / (xs.max() - xs.min())
    ys = (ys - ys.min()) / (ys.max() - ys.min())
    return [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in zip(xs, ys, strict=True)]


def draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, box: Box, fill: int | tuple[int, ...], hole: int | tuple[int, ...]
) -> None:
    """Draw ``shape`` filling ``box`` (already in the drawing's pixel coordinates)."""
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "star":
        draw.polygon(_star(x0, y0, x1, y1), fill=fill)
    elif shape == "heart":
        draw.polygon(_heart(x0, y0, x1, y1), fill=fill)
    elif shape == "ring":
        draw.ellipse(box, fill=fill)
        inset = min(x1 - x0, y1 - y0) * 0.27
        draw.ellipse((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=hole)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def shape_coverage(shape: str, width: int, height: int, box: Box) -> np.ndarray:
    """Fraction of each pixel of a ``height x width`` canvas covered by ``shape`` in ``box``."""
    s = SUPERSAMPLE
    canvas = Image.new("L", (width * s, height * s), 0)
    draw_shape(ImageDraw.Draw(canvas), shape, tuple(v * s for v in box), 255, 0)  # type: ignore[arg-type]
    small = canvas.resize((width, height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0
