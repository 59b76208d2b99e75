"""Segmenters: one object's pixels in a finished image, from box prompts.

Refine repaints a failing object inside a mask and keeps every other pixel. A box is a poor mask
(an object drawn larger than its box leaves a half-object behind; a box is far larger than a thin
object), so the mask comes from a segmenter behind one small interface, :class:`Segmenter`:

* :class:`TransformersSam`: transformers' ``SamModel`` or ``Sam2Model`` (no torchvision needed);
* :class:`SegmentAnythingSam`: ``segment_anything``'s ``SamPredictor`` on an original ``.pth``
  checkpoint (the optional extra ``scenewright[sam]``, which needs a torchvision for your torch);
* :class:`AttentionMaskSegmenter`: the fallback without any checkpoint, the object's own
  ConceptAttention map thresholded near its boxes.

:func:`load_segmenter` turns what the user typed (``--sam``) into one of them. Heavy imports
(transformers, segment_anything) happen only when a segmenter is built.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from scenewright.arrays import to_numpy, to_numpy_bool
from scenewright.errors import BackendError, InvalidInputError
from scenewright.tools.checkpoints import (
    CheckpointKind,
    OnDevice,
    default_device,
    hub_model_type,
    resolve_checkpoint,
)

# (x0, y0, x1, y1) in pixels of the image being segmented.
PixelBox = tuple[float, float, float, float]

# ConceptAttention maps are a softmax over the concepts (objects + background) on every token, so
# an object's own tokens sit near its peak while its spill onto neighbours is a fraction of it.
# Normalised to the object's maximum, a third of the peak separates the two on the maps refine
# reads; lower thresholds merge the object with the background around it, higher ones drop the
# edges of the object that an inpainting must cover. Normalising makes it independent of how
# confident the whole map is.
ATTENTION_THRESHOLD = 0.35
# How far around a prompt box the attention fallback looks for its object, as a fraction of the
# box's size on each side: enough for an object drawn somewhat larger than its box, bounded so a
# diffuse map cannot spread the mask over the image.
NEAR_FRACTION = 0.25
SAM_KINDS = ("vit_b", "vit_l", "vit_h")
TRANSFORMERS_TYPES = ("sam", "sam2")
SAM_FIELD = "sam"
SAM_FIX = "give a transformers SAM folder (config.json), a SAM .pth checkpoint, or vit_b:PATH.pth"
SAM_CHECKPOINT = CheckpointKind(
    SAM_FIELD, SAM_FIX, TRANSFORMERS_TYPES, "SAM or SAM 2", "is neither a .pth checkpoint nor a model folder"
)
EXTRA_FIX = (
    "pip install 'scenewright[sam]' together with a torchvision built for your torch, "
    "or give a transformers SAM folder instead (it needs no torchvision)"
)


@runtime_checkable
class Segmenter(Protocol):
    """Pixels of whatever lies in the given boxes, as one union mask.

    ``name`` goes into reports, so that a mask can be traced to what made it.
    """

    name: str

    def segment(self, image: Image.Image, boxes: Sequence[PixelBox]) -> np.ndarray:
        """A boolean (H, W) mask of ``image``: the union of one mask per box (empty without boxes)."""
        ...


def _empty(image: Image.Image) -> np.ndarray:
    return np.zeros((image.height, image.width), dtype=bool)


def _clip_boxes(boxes: Sequence[PixelBox], size: tuple[int, int]) -> list[list[float]]:
    """Boxes clipped to the image, empty ones dropped: a SAM prompt off the image means nothing."""
    width, height = size
    kept = []
    for x0, y0, x1, y1 in boxes:
        box = [min(max(x0, 0.0), width), min(max(y0, 0.0), height)]
        box += [min(max(x1, 0.0), width), min(max(y1, 0.0), height)]
        if box[2] > box[0] and box[3] > box[1]:
            kept.append([float(v) for v in box])
    return kept


# ---------------------------------------------------------------------------------- attention
class AttentionMaskSegmenter:
    """The fallback without a checkpoint: one object's attention map, thresholded near the boxes.

    Built per object from its (rows, cols) map (a row of the ownership of
    :func:`~scenewright.executor.explain.read_object_maps`); tokens at or above ``threshold`` times the map's maximum count, but only within
    each prompt box grown by ``near`` of its size, so the mask stays where the object was asked
    for or was found (refine passes stray blobs' boxes as prompts too).
    """

    name = "attention"

    def __init__(
        self,
        object_map: np.ndarray | torch.Tensor,
        threshold: float = ATTENTION_THRESHOLD,
        near: float = NEAR_FRACTION,
    ) -> None:
        values = to_numpy(object_map) if isinstance(object_map, torch.Tensor) else object_map
        self.map = np.asarray(values, dtype=np.float32)
        if self.map.ndim != 2:
            raise ValueError(f"an object map is (rows, cols), got shape {self.map.shape}")
        self.threshold = threshold
        self.near = near

    def token_mask(self, size: tuple[int, int], boxes: Sequence[PixelBox]) -> np.ndarray:
        """The mask on the map's own (rows, cols) grid; ``size`` is the image's (width, height)."""
        rows, cols = self.map.shape
        width, height = size
        peak = float(self.map.max()) if self.map.size else 0.0
        if peak <= 0:
            return np.zeros((rows, cols), dtype=bool)
        strong = self.map / peak >= self.threshold
        xs = (np.arange(cols) + 0.5) * width / cols
        ys = (np.arange(rows) + 0.5) * height / rows
        near = np.zeros((rows, cols), dtype=bool)
        for x0, y0, x1, y1 in _clip_boxes(boxes, size):
            grow_x, grow_y = self.near * (x1 - x0), self.near * (y1 - y0)
            inside_x = (xs >= x0 - grow_x) & (xs < x1 + grow_x)
            inside_y = (ys >= y0 - grow_y) & (ys < y1 + grow_y)
            near |= inside_y[:, None] & inside_x[None, :]
        return strong & near

    def segment(self, image: Image.Image, boxes: Sequence[PixelBox]) -> np.ndarray:
        tokens = self.token_mask(image.size, boxes)
        resized = Image.fromarray(tokens.astype(np.uint8) * 255).resize(image.size, Image.Resampling.NEAREST)
        return np.asarray(resized) > 127


# ------------------------------------------------------------------------------- transformers
def _best_masks(masks: torch.Tensor, scores: torch.Tensor) -> np.ndarray:
    """The union over boxes of each box's mask with the highest predicted IoU.

    ``masks``: (boxes, candidates, H, W) booleans; ``scores``: (boxes, candidates).
    """
    best = scores.float().argmax(dim=-1)
    chosen = masks[torch.arange(masks.shape[0]), best.to(masks.device)]
    return to_numpy_bool(chosen.any(dim=0))


@dataclass(frozen=True)
class _SquareInputs:
    """SAM 2's own preprocessing, for when its processor cannot be built.

    transformers' ``Sam2ImageProcessor`` exists only as a torchvision backend; what it does for a
    box prompt is simple and fixed (resize to a square, ImageNet normalisation, boxes scaled to the
    square, masks resized back), so it is done here with PIL and torch instead.
    """

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def pixels(self, image: Image.Image) -> torch.Tensor:
        square = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        tensor = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((tensor - mean) / std)[None]

    def boxes(self, boxes: list[list[float]], size: tuple[int, int]) -> torch.Tensor:
        width, height = size
        scale = torch.tensor([self.size / width, self.size / height] * 2)
        return (torch.tensor(boxes, dtype=torch.float32) * scale)[None]


def _square_inputs(model: Any, folder: Path | None) -> _SquareInputs:
    """Size from the model's prompt encoder; mean and std from a saved processor config if any."""
    size = model.config.prompt_encoder_config.image_size
    size = int(size[0] if isinstance(size, list | tuple) else size)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)  # ImageNet: SAM 2's defaults
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = folder / name if folder is not None else None
        if path is None or not path.is_file():
            continue
        data = json.loads(path.read_text())
        data = data.get("image_processor", data)
        mean = tuple(float(v) for v in data.get("image_mean", mean))
        std = tuple(float(v) for v in data.get("image_std", std))
        break
    return _SquareInputs(size, mean, std)


def _default_sam_processor(model: Any) -> Any:
    """A SAM processor matching ``model``'s input size, on the PIL backend (no torchvision)."""
    from transformers import SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    size = int(model.config.vision_config.image_size)
    low_res = 4 * size // int(model.config.vision_config.patch_size)  # the mask decoder's output
    image_processor = SamImageProcessorPil(
        size={"longest_edge": size},
        pad_size={"height": size, "width": size},
        mask_size={"longest_edge": low_res},
        mask_pad_size={"height": low_res, "width": low_res},
    )
    return SamProcessor(image_processor)


class TransformersSam(OnDevice):
    """transformers' ``SamModel`` or ``Sam2Model`` with box prompts; one mask per box, best by IoU.

    SAM 1 goes through its ``SamProcessor`` (transformers falls back to the PIL image processor
    without torchvision). SAM 2's processor needs torchvision; without one, the same preprocessing
    is done here (:class:`_SquareInputs`). Build with :meth:`from_pretrained`, or pass a model and
    processor already built (tests build tiny ones from config).
    """

    def __init__(
        self,
        model: Any,
        processor: Any = None,
        *,
        device: str | torch.device | None = None,
        folder: Path | None = None,
        name: str | None = None,
    ) -> None:
        kind = getattr(model.config, "model_type", None)
        if kind not in TRANSFORMERS_TYPES:
            raise InvalidInputError(
                SAM_FIELD,
                f"a '{kind}' model cannot take box prompts here",
                f"use a SAM or SAM 2 model; {SAM_FIX}",
            )
        self.kind: str = kind
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        if processor is None and kind == "sam":
            processor = _default_sam_processor(model)
        self.processor = processor
        self.square = _square_inputs(model, folder) if processor is None else None
        self.name = name or f"transformers:{kind}"

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | Path, device: str | torch.device | None = None
    ) -> TransformersSam:
        """Load a SAM or SAM 2 model (and its processor) from a folder, or from the hub by id.

        A local folder never touches the network; a hub id downloads (or reads the cache) as
        transformers does.
        """
        from transformers import AutoProcessor, Sam2Model, SamModel

        source = str(path_or_id)
        folder = Path(source) if Path(source).is_dir() else None
        kind = hub_model_type(source, SAM_CHECKPOINT)
        model_class = SamModel if kind == "sam" else Sam2Model
        try:
            model = model_class.from_pretrained(source)
        except (OSError, ValueError) as error:
            raise BackendError(f"sam: cannot load the {kind} weights in {source} ({error})") from error
        try:
            processor = AutoProcessor.from_pretrained(source)
        except (ImportError, OSError, ValueError):  # SAM 2 without torchvision, or no saved processor
            processor = None
        return cls(
            model,
            processor,
            device=default_device(device),
            folder=folder,
            name=f"transformers:{kind}:{source}",
        )

    @torch.inference_mode()
    def segment(self, image: Image.Image, boxes: Sequence[PixelBox]) -> np.ndarray:
        rgb = image.convert("RGB")
        prompts = _clip_boxes(boxes, rgb.size)
        if not prompts:
            return _empty(rgb)
        if self.square is not None:
            pixels, input_boxes = self.square.pixels(rgb), self.square.boxes(prompts, rgb.size)
        else:
            inputs = self.processor(images=rgb, input_boxes=[prompts], return_tensors="pt")
            pixels, input_boxes = inputs["pixel_values"], inputs["input_boxes"]
        out = self.model(
            pixel_values=pixels.to(self.device, self.dtype),
            input_boxes=input_boxes.to(self.device, self.dtype),
            multimask_output=True,
        )
        low_res = out.pred_masks.float().cpu()  # (1, boxes, candidates, h, w) logits
        if self.square is not None:
            masks = (
                F.interpolate(low_res[0], (rgb.height, rgb.width), mode="bilinear", align_corners=False) > 0
            )
        elif self.kind == "sam":
            masks = self.processor.post_process_masks(
                low_res, inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )[0]
        else:
            masks = self.processor.post_process_masks(low_res, inputs["original_sizes"])[0]
        return _best_masks(masks, out.iou_scores[0].cpu())


# ---------------------------------------------------------------------------- segment-anything
def _import_segment_anything(checkpoint: str) -> Any:
    """``segment_anything``, or an error saying which import failed and how to get it."""
    try:
        importlib.import_module("torchvision")
        return importlib.import_module("segment_anything")
    except ImportError as error:  # a missing package, or a torchvision built for another torch
        raise InvalidInputError(
            SAM_FIELD,
            f"{checkpoint} is a segment-anything checkpoint, but it cannot be used here ({error})",
            EXTRA_FIX,
        ) from error


def sam_kind(path: str | Path) -> str | None:
    """vit_b, vit_l or vit_h read from a checkpoint's file name (``sam_vit_b_01ec64.pth``)."""
    found = re.search(r"vit[_-]?([blh])(?![a-z])", Path(path).name.lower())
    return f"vit_{found.group(1)}" if found else None


class SegmentAnythingSam:
    """``segment_anything``'s ``SamPredictor`` on an original checkpoint; best mask per box by score."""

    def __init__(self, predictor: Any, name: str = "segment-anything") -> None:
        self.predictor = predictor
        self.name = name

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, kind: str | None = None, device: str | torch.device | None = None
    ) -> SegmentAnythingSam:
        """Build ``sam_model_registry[kind]`` from ``checkpoint`` (kind read from the name if not given)."""
        path = Path(checkpoint)
        if not path.is_file():
            raise InvalidInputError(SAM_FIELD, f"{path} does not exist", SAM_FIX)
        kind = kind or sam_kind(path)
        if kind not in SAM_KINDS:
            raise InvalidInputError(
                SAM_FIELD,
                f"cannot tell which SAM {path.name} is (vit_b, vit_l or vit_h)",
                f"name it, e.g. vit_b:{path}",
            )
        module = _import_segment_anything(str(path))
        model = module.sam_model_registry[kind](checkpoint=str(path))
        model.to(default_device(device))
        return cls(module.SamPredictor(model), name=f"segment-anything:{kind}:{path}")

    def segment(self, image: Image.Image, boxes: Sequence[PixelBox]) -> np.ndarray:
        rgb = image.convert("RGB")
        union = _empty(rgb)
        prompts = _clip_boxes(boxes, rgb.size)
        if not prompts:
            return union
        self.predictor.set_image(np.asarray(rgb))
        for box in prompts:
            masks, scores, _logits = self.predictor.predict(
                box=np.asarray(box, dtype=np.float32), multimask_output=True
            )
            union |= np.asarray(masks[int(np.argmax(scores))], dtype=bool)
        return union


# -------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class SegmenterSpec:
    """What ``--sam`` names, checked without loading any weights."""

    kind: Literal["transformers", "segment-anything"]
    source: str  # a folder or hub id (transformers), a .pth file (segment-anything)
    variant: str | None = None  # vit_b, vit_l, vit_h for segment-anything; sam, sam2 for a folder


_CHECKPOINT_SUFFIXES = (".pth", ".pt")


def resolve_segmenter(spec: str) -> SegmenterSpec:
    """Check ``spec`` (a folder, a ``.pth``, ``vit_b:PATH`` or a hub id) and say what it is.

    Every problem that can be found without weights is an :class:`InvalidInputError` on the
    ``sam`` field, so the command line refuses it before rendering anything.
    """
    text = spec.strip()
    if not text:
        raise InvalidInputError(SAM_FIELD, "is empty", SAM_FIX)
    named, colon, rest = text.partition(":")
    if colon and named in SAM_KINDS:
        kind: str | None = named
        path = Path(rest).expanduser()
    else:
        kind, path = None, Path(text).expanduser()
    if kind is not None or path.suffix.lower() in _CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise InvalidInputError(SAM_FIELD, f"{path} does not exist", SAM_FIX)
        kind = kind or sam_kind(path)
        if kind is None:
            raise InvalidInputError(
                SAM_FIELD,
                f"cannot tell which SAM {path.name} is (vit_b, vit_l or vit_h)",
                f"name it, e.g. vit_b:{path}",
            )
        _import_segment_anything(str(path))
        return SegmenterSpec("segment-anything", str(path), kind)
    source, model_type = resolve_checkpoint(text, SAM_CHECKPOINT)
    return SegmenterSpec("transformers", source, model_type)  # a hub id is checked when loaded


def load_segmenter(
    spec: str | SegmenterSpec | None, device: str | torch.device | None = None
) -> Segmenter | None:
    """The segmenter ``spec`` names; None (or "") for none, i.e. refine's attention fallback."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    resolved = spec if isinstance(spec, SegmenterSpec) else resolve_segmenter(spec)
    if resolved.kind == "segment-anything":
        return SegmentAnythingSam.from_checkpoint(resolved.source, resolved.variant, device)
    return TransformersSam.from_pretrained(resolved.source, device)


def blob_boxes(token_mask: np.ndarray | torch.Tensor, size: tuple[int, int]) -> list[PixelBox]:
    """The pixel box of every connected blob of a (rows, cols) token mask in an image of ``size``.

    Refine uses them as extra prompts: an instance drawn where it was not planned must be masked
    (and so removed) as well.
    """
    tokens = to_numpy_bool(token_mask) if isinstance(token_mask, torch.Tensor) else np.asarray(token_mask)
    rows, cols = tokens.shape
    width, height = size
    labels, _count = ndimage.label(tokens.astype(bool))
    boxes: list[PixelBox] = []
    for found in ndimage.find_objects(labels):
        if found is None:
            continue
        ys, xs = found
        boxes.append(
            (
                xs.start * width / cols,
                ys.start * height / rows,
                xs.stop * width / cols,
                ys.stop * height / rows,
            )
        )
    return boxes


def tokens_touching(pixel_mask: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """A (rows, cols) token mask: every token whose pixel cell holds at least one masked pixel.

    Rounding outwards (a token that a mask merely touches is in) keeps a segmenter's mask whole
    once refine works on tokens.
    """
    mask = np.asarray(pixel_mask, dtype=bool)
    height, width = mask.shape
    rows, cols = grid
    integral = np.zeros((height + 1, width + 1), dtype=np.int64)
    integral[1:, 1:] = mask.cumsum(axis=0).cumsum(axis=1)
    y0 = np.floor(np.arange(rows) * height / rows).astype(int)
    y1 = np.maximum(np.ceil((np.arange(rows) + 1) * height / rows).astype(int), y0 + 1)
    x0 = np.floor(np.arange(cols) * width / cols).astype(int)
    x1 = np.maximum(np.ceil((np.arange(cols) + 1) * width / cols).astype(int), x0 + 1)
    y1, x1 = np.minimum(y1, height), np.minimum(x1, width)
    total = integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0]
    return torch.from_numpy(total > 0)
