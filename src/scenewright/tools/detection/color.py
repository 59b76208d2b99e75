"""The colour of each detected instance, by zero-shot CLIP on its crop, as GenEval names it.

GenEval crops each instance's box from the image with everything outside its mask painted grey
(#999), and picks the colour whose prompts ("a photo of a red car", "a photo of a red-colored
car", "a photo of a red object", averaged) CLIP finds closest. The scorer sits behind a small
interface so tests can stub it and a CLIP from any folder or hub id can be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from scenewright.arrays import to_numpy
from scenewright.errors import BackendError, InvalidInputError
from scenewright.tools.checkpoints import CheckpointKind, OnDevice, default_device, resolve_checkpoint
from scenewright.tools.detection.color_names import COLORS
from scenewright.tools.detection.instances import Instance

TEMPLATES = (
    "a photo of a {color} {name}",
    "a photo of a {color}-colored {name}",
    "a photo of a {color} object",
)
BACKGROUND = (153, 153, 153)  # GenEval's #999 outside an instance's mask
DEFAULT_CLIP = "openai/clip-vit-large-patch14"  # the ViT-L/14 GenEval uses


CLIP_CHECKPOINT = CheckpointKind(
    "clip", "give a CLIP folder or hub id with --clip", ("clip",), "a CLIP model"
)


def resolve_clip(spec: str) -> str:
    """A CLIP folder (its config says ``clip``) or a hub id; anything else is a one-line error now,
    not a failed verification after the first render."""
    text = spec.strip()
    if not text:
        raise InvalidInputError(CLIP_CHECKPOINT.field, "is empty", CLIP_CHECKPOINT.fix)
    return resolve_checkpoint(text, CLIP_CHECKPOINT)[0]


@runtime_checkable
class ColorScorer(Protocol):
    """Scores of each crop for each colour in ``COLORS`` (higher is more likely)."""

    def scores(self, crops: Sequence[Image.Image], name: str) -> np.ndarray:
        """A (len(crops), len(COLORS)) array."""
        ...


def crop_instance(image: Image.Image, instance: Instance) -> Image.Image:
    """The instance's box, with pixels outside its mask (when it has one) painted grey."""
    rgb = image.convert("RGB")
    if instance.mask is not None:
        mask = np.asarray(instance.mask, dtype=bool)
        if mask.shape != (rgb.height, rgb.width):
            raise ValueError(f"an instance mask of shape {mask.shape} for a {rgb.height}x{rgb.width} image")
        grey = Image.new("RGB", rgb.size, BACKGROUND)
        rgb = Image.composite(rgb, grey, Image.fromarray(mask.astype(np.uint8) * 255))
    x0, y0, x1, y1 = instance.box
    box = (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1)))
    if box[2] <= box[0] or box[3] <= box[1]:
        box = (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))
    return rgb.crop(box)


def classify_colors(
    image: Image.Image, instances: Sequence[Instance], name: str, scorer: ColorScorer
) -> list[str]:
    """The colour of each instance (same order); empty for no instances."""
    if not instances:
        return []
    scores = np.asarray(scorer.scores([crop_instance(image, i) for i in instances], name))
    if scores.shape != (len(instances), len(COLORS)):
        raise ValueError(f"a colour scorer gave shape {scores.shape}, not ({len(instances)}, {len(COLORS)})")
    return [COLORS[int(k)] for k in scores.argmax(axis=1)]


class ClipColorScorer(OnDevice):
    """Zero-shot colour classification with a transformers ``CLIPModel``.

    One text classifier per object name (the mean of the normalised template embeddings for each
    colour, normalised again), cached, as GenEval builds it.
    """

    def __init__(self, model: Any, processor: Any, device: str | torch.device | None = None) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.processor = processor
        self._classifiers: dict[str, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, source: str | Path = DEFAULT_CLIP, device: str | None = None) -> ClipColorScorer:
        """A CLIP from a folder or hub id; a folder never touches the network."""
        from transformers import CLIPModel, CLIPProcessor

        try:
            model = CLIPModel.from_pretrained(str(source))
            processor = CLIPProcessor.from_pretrained(str(source))
        except (OSError, ValueError) as error:
            raise BackendError(
                f"clip: cannot load a CLIP model from {source} ({error}); give a CLIP folder or hub id with --clip"
            ) from error
        return cls(model, processor, default_device(device))

    @torch.inference_mode()
    def _classifier(self, name: str) -> torch.Tensor:
        if name not in self._classifiers:
            rows = []
            for color in COLORS:
                texts = [t.format(color=color, name=name) for t in TEMPLATES]
                tokens = self.processor.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
                embedded = _features(self.model.get_text_features(**tokens)).float()
                embedded = embedded / embedded.norm(dim=-1, keepdim=True)
                mean = embedded.mean(dim=0)
                rows.append(mean / mean.norm())
            self._classifiers[name] = torch.stack(rows)
        return self._classifiers[name]

    @torch.inference_mode()
    def scores(self, crops: Sequence[Image.Image], name: str) -> np.ndarray:
        if not crops:
            return np.zeros((0, len(COLORS)), dtype=np.float32)
        pixels = self.processor.image_processor(images=list(crops), return_tensors="pt")["pixel_values"]
        features = _features(self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype)))
        features = features.float()
        features = features / features.norm(dim=-1, keepdim=True)
        return to_numpy(100.0 * features @ self._classifier(name).T)


def _features(output: Any) -> torch.Tensor:
    """The embedding tensor, whether transformers returns it bare or inside an output object."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    return torch.as_tensor(output[0])
