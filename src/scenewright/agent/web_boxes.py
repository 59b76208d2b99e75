"""The web studio's box editor: a plan's boxes as ``gradio-image-annotation`` boxes and back.

The editor shows the current image with one labelled box per instance ("red circle" three times,
"blue square" once); the user drags, resizes, deletes or draws boxes, and :func:`plan_from_boxes`
turns them back into the plan: each object gets the boxes that carry its label (so its count
follows), everything else in the plan stays. Coordinates are pixels on the editor's picture and
fractions of the canvas in the plan.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from PIL import Image

from scenewright.errors import InvalidInputError
from scenewright.planner.plan import MAX_COUNT, MAX_NAME_CHARS, MAX_OBJECTS

EDITOR_SIDE = 384  # the editor's picture: big enough to grab a handle on a 64-pixel image
_COLOURS = {
    "red": (230, 60, 60), "green": (60, 200, 90), "blue": (70, 120, 240), "yellow": (235, 210, 50),
    "purple": (170, 90, 220), "orange": (245, 150, 40), "cyan": (60, 210, 220), "white": (235, 235, 235),
}  # fmt: skip
_FALLBACK = (255, 140, 0)


# The editor shows our own images (at most 2048 x 2048); a picture sent in its place is refused
# by its header before a pixel is decoded (a 419 KB PNG of 12,000 x 12,000 is 432 MB of pixels).
MAX_EDITOR_PIXELS = 4096 * 4096
MAX_EDITOR_BOXES = MAX_OBJECTS * MAX_COUNT  # one box per instance of a full plan
_COORDINATES = ("xmin", "ymin", "xmax", "ymax")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def editor_problem(payload: Any) -> str | None:
    """Why the editor's raw payload (as the browser sent it) cannot be used, or None. Checked
    before the annotation component reads it: every field, and the picture's size from its header."""
    from PIL import Image as PILImage

    if not isinstance(payload, dict):
        return "the box editor sent nothing usable"
    image = payload.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("path"), str):
        return "the box editor is empty"
    boxes = payload.get("boxes")
    if boxes is None:
        boxes = []
    if not isinstance(boxes, list) or len(boxes) > MAX_EDITOR_BOXES:
        return f"the boxes are not a list of at most {MAX_EDITOR_BOXES}"
    for index, box in enumerate(boxes):
        if not isinstance(box, dict):
            return f"box {index} is not a box"
        missing = next((k for k in _COORDINATES if not _number(box.get(k)) or abs(box[k]) > 1e6), None)
        if missing is not None:
            return f"box {index} has no number {missing}"
        if not isinstance(box.get("label", ""), str) or len(box.get("label", "")) > 2 * MAX_NAME_CHARS:
            return f"box {index} has a label that is not a short text"
        scale = box.get("scaleFactor", 1)
        if not _number(scale) or scale <= 0:
            return f"box {index} has a scaleFactor that is not a positive number"
        if not isinstance(box.get("color", ""), str):
            return f"box {index} has a colour that is not text"
    try:
        with warnings.catch_warnings():  # a large size is answered below, not warned about
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(image["path"]) as opened:  # reads the header only
                width, height = opened.size
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return "the picture is not a readable image"
    if width * height > MAX_EDITOR_PIXELS:
        return f"the picture is {width:,} x {height:,} pixels (at most {MAX_EDITOR_PIXELS:,} in all)"
    return None


def checked_annotator(*args: Any, **options: Any) -> Any:
    """The box editor: ``gradio_image_annotation``'s component, whose input is checked by
    :func:`editor_problem` before the component reads it. A bad payload reaches the handler as
    ``{"problem": ...}``, which :func:`plan_from_boxes` refuses in one line."""
    from gradio.data_classes import GradioModel
    from gradio_image_annotation import image_annotator

    class RawPayload(GradioModel):  # anything the browser sends; checked by us, not by pydantic
        image: Any = None
        boxes: Any = None
        orientation: Any = 0

    editor = image_annotator(*args, **options)
    parse = editor.preprocess  # the component's own reading, used once ours has passed

    def preprocess(payload: Any) -> Any:
        if payload is None:
            return None
        raw = payload.model_dump() if hasattr(payload, "model_dump") else payload
        problem = editor_problem(raw)
        if problem is not None:
            return {"problem": problem}
        boxes, orientation = raw.get("boxes") or [], raw.get("orientation") or 0
        return parse(
            image_annotator.data_model.model_validate(
                {"image": raw["image"], "boxes": boxes, "orientation": orientation}
            )
        )

    # An instance's attributes, not a subclass: Gradio writes a stub file beside any module that
    # defines a component class.
    editor.data_model = RawPayload
    editor.preprocess = preprocess
    return editor


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
    if isinstance(value, dict) and isinstance(value.get("problem"), str):
        raise InvalidInputError("boxes", value["problem"], "render a scene, then drag its boxes")
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
