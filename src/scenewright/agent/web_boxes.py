"""The web studio's box editor: a plan's boxes as ``gradio-image-annotation`` boxes and back.

The editor shows the current image with one labelled box per instance ("red circle" three times,
"blue square" once); the user drags, resizes, deletes or draws boxes, and :func:`plan_from_boxes`
turns them back into the plan: each object gets the boxes that carry its label (so its count
follows), everything else in the plan stays. Coordinates are pixels on the editor's picture and
fractions of the canvas in the plan.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from scenewright.errors import InvalidInputError

EDITOR_SIDE = 384  # the editor's picture: big enough to grab a handle on a 64-pixel image
_COLOURS = {
    "red": (230, 60, 60), "green": (60, 200, 90), "blue": (70, 120, 240), "yellow": (235, 210, 50),
    "purple": (170, 90, 220), "orange": (245, 150, 40), "cyan": (60, 210, 220), "white": (235, 235, 235),
}  # fmt: skip
_FALLBACK = (255, 140, 0)


def object_labels(plan: dict[str, Any]) -> list[str]:
    """One distinct label per object: its words ("red circle"), numbered when two read alike."""
    labels: list[str] = []
    for obj in plan.get("objects") or []:
        words = " ".join([*obj.get("attributes", []), obj.get("name", "object")]).strip() or "object"
        label, k = words, 1
        while label in labels:
            k += 1
            label = f"{words} #{k}"
        labels.append(label)
    return labels


def _colour(obj: dict[str, Any]) -> tuple[int, int, int]:
    return next((_COLOURS[a] for a in obj.get("attributes", []) if a in _COLOURS), _FALLBACK)


def editor_value(plan: dict[str, Any], image: Image.Image | None) -> dict[str, Any]:
    """The annotator's value: the image scaled to the editor's size and every planned box."""
    base = image.convert("RGB") if image is not None else Image.new("RGB", (64, 64))
    scale = EDITOR_SIDE / max(base.size)
    size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    picture = base.resize(size, Image.Resampling.NEAREST)
    boxes = []
    for obj, label in zip(plan.get("objects") or [], object_labels(plan), strict=True):
        for x0, y0, x1, y1 in obj.get("boxes") or []:
            boxes.append(
                {
                    "label": label,
                    "color": _colour(obj),
                    "xmin": round(x0 * size[0]),
                    "ymin": round(y0 * size[1]),
                    "xmax": round(x1 * size[0]),
                    "ymax": round(y1 * size[1]),
                }
            )
    return {"image": np.asarray(picture), "boxes": boxes}


def plan_from_boxes(plan: dict[str, Any], value: dict[str, Any] | None) -> dict[str, Any]:
    """``plan`` with each object's boxes (and so its count) taken from the editor's ``value``.

    Raises :class:`InvalidInputError` (one line) for a box with no object's label or an object
    left without a box.
    """
    if not plan.get("objects"):
        raise InvalidInputError("boxes", "there is no plan to edit yet", "ask for a scene first")
    if not isinstance(value, dict) or value.get("image") is None:
        raise InvalidInputError("boxes", "the box editor is empty", "render a scene, then drag its boxes")
    height, width = np.asarray(value["image"]).shape[:2]
    labels = object_labels(plan)
    grouped: dict[str, list[list[float]]] = {label: [] for label in labels}
    for box in value.get("boxes") or []:
        label = str(box.get("label") or "")
        if label not in grouped:
            raise InvalidInputError(
                "boxes", f"a box is labelled '{label or 'nothing'}'", f"label it one of: {', '.join(labels)}"
            )
        x0, x1 = sorted((float(box["xmin"]) / width, float(box["xmax"]) / width))
        y0, y1 = sorted((float(box["ymin"]) / height, float(box["ymax"]) / height))
        grouped[label].append([round(min(max(v, 0.0), 1.0), 4) for v in (x0, y0, x1, y1)])
    data = {**plan, "objects": [dict(o) for o in plan["objects"]]}
    for obj, label in zip(data["objects"], labels, strict=True):
        boxes = grouped[label]
        if not boxes:
            raise InvalidInputError(
                "boxes",
                f"the {label} has no box left",
                f'draw one labelled "{label}", or ask "remove the {obj.get("name")}"',
            )
        obj["boxes"], obj["count"] = boxes, len(boxes)
    return data
