"""Detectors from ``transformers`` behind one interface: scored instances per class name.

* OWLv2 (``Owlv2ForObjectDetection``; OWL-ViT too): one text query per name, a sigmoid score per
  predicted box and query, each box labelled with its best query; boxes are relative to the image
  padded to a square (OWLv2).
* Grounding DINO (``AutoModelForZeroShotObjectDetection``): the names joined into one caption
  ("cat . dog ."); a box's score for a name is its best score over that name's tokens.
* Mask2Former (``Mask2FormerForUniversalSegmentation``) trained on COCO instances, the family
  GenEval's own detector belongs to: closed vocabulary, names matched to its labels; instances
  come with masks, so colour crops are masked as GenEval's are.

Which one a checkpoint is comes from its config's ``model_type``. Every detector returns all
candidates; :func:`~scenewright.tools.detection.instances.select_instances` applies the
thresholds, which differ by family (:data:`THRESHOLDS`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from scenewright.arrays import to_numpy
from scenewright.errors import BackendError, InvalidInputError
from scenewright.tools.checkpoints import (
    CheckpointKind,
    OnDevice,
    default_device,
    hub_model_type,
    resolve_checkpoint,
)
from scenewright.tools.detection.instances import Instance, center_boxes_to_pixels, mask_box

FIELD = "detector"
FIX = "give an OWLv2, Grounding DINO or Mask2Former (COCO) checkpoint folder or hub id"
OWL_TYPES = ("owlv2", "owlvit")
GROUNDING_TYPES = ("grounding-dino", "mm-grounding-dino")
MASK2FORMER_TYPES = ("mask2former",)
KNOWN_TYPES = (*OWL_TYPES, *GROUNDING_TYPES, *MASK2FORMER_TYPES)


@dataclass(frozen=True)
class Thresholds:
    """Confidence above which an instance counts (``counting`` for objects wanted more than once,
    as GenEval uses a stricter one for counting prompts) and the IoU at which a weaker box that
    overlaps a kept one is dropped (1.0: never)."""

    threshold: float
    counting: float
    max_overlap: float


# Where each number comes from (checked against the public code and model cards):
# * Mask2Former: GenEval's own evaluator (djghosh13/geneval, evaluation/evaluate_images.py):
#   threshold 0.3, counting_threshold 0.9, max_overlap 1.0 (no suppression), at most 16 objects.
# * OWLv2: SLD's benchmark evaluation of generated images with google/owlv2-base-patch16-ensemble
#   (tsunghan-wu/SLD, lmd_benchmark_eval.py and benchmark_config.ini [eval]):
#   prim_detection_threshold 0.2 for presence, counts and positions, and class-aware NMS at IoU
#   0.15. (0.45 is SLD's threshold for attribute queries such as "red apple"; here the plain name
#   is queried and CLIP names the colour, so 0.2 applies. 0.1 is only the model card's demo value.)
# * OWL-ViT: LMD's evaluation with google/owlvit-base-patch32 (TonyLianLong/LLM-groundedDiffusion,
#   scripts/owl_vit_eval.py): detection_score_threshold 0.05, NMS 0.5.
# * Grounding DINO: IDEA-Research/GroundingDINO's README, BOX_TRESHOLD 0.35 (TEXT_TRESHOLD 0.25 is
#   implied: a name's best token above 0.35 is above 0.25). transformers' own example uses 0.4;
#   MM Grounding DINO has no value of its own and takes Grounding DINO's. Its inference applies no
#   NMS; the 0.5 here only drops a duplicate box of one name.
THRESHOLDS: dict[str, Thresholds] = {
    "mask2former": Thresholds(0.3, 0.9, 1.0),
    "owlv2": Thresholds(0.2, 0.2, 0.15),
    "owlvit": Thresholds(0.05, 0.05, 0.5),
    "grounding-dino": Thresholds(0.35, 0.35, 0.5),
    "mm-grounding-dino": Thresholds(0.35, 0.35, 0.5),
}

# GenEval's class names that COCO label lists spell otherwise, and older COCO spellings.
_ALIASES = {
    "computer mouse": "mouse",
    "tv remote": "remote",
    "computer keyboard": "keyboard",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "sofa": "couch",
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "hair dryer": "hair drier",
}


def canonical_name(name: str) -> str:
    """A class name compared across vocabularies: lower case, single spaces, aliases resolved."""
    plain = " ".join(re.sub(r"[_\-]+", " ", name.lower()).split())
    return _ALIASES.get(plain, plain)


@runtime_checkable
class Detector(Protocol):
    """Every candidate instance of each name, most confident first."""

    name: str
    kind: str  # a config model_type, e.g. "owlv2"

    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]: ...


class _TransformersDetector(OnDevice, ABC):
    """Shared set-up (the model in eval mode on its device) and what every family does alike: RGB
    in, nothing asked nothing found, candidates ranked best first."""

    def __init__(
        self, model: Any, image_processor: Any, tokenizer: Any, device: Any, name: str | None
    ) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.kind: str = str(model.config.model_type)
        self.name = name or f"transformers:{self.kind}"

    @torch.inference_mode()
    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]:
        if not names:
            return {}
        found = self._candidates(image.convert("RGB"), list(names))
        return {name: sorted(items, key=lambda i: -i.score) for name, items in found.items()}

    @abstractmethod
    def _candidates(self, rgb: Image.Image, names: list[str]) -> dict[str, list[Instance]]:
        """Every candidate instance of each name, in any order."""

    def _pixels(self, image: Image.Image) -> dict[str, torch.Tensor]:
        inputs = self.image_processor(images=image, return_tensors="pt")
        out = {"pixel_values": inputs["pixel_values"].to(self.device, self.dtype)}
        if "pixel_mask" in inputs:
            out["pixel_mask"] = inputs["pixel_mask"].to(self.device)
        return out


class OwlDetector(_TransformersDetector):
    """OWLv2 or OWL-ViT: one text query per name; each box goes to its best-scoring name."""

    def _candidates(self, rgb: Image.Image, names: list[str]) -> dict[str, list[Instance]]:
        length = int(self.model.config.text_config.max_position_embeddings)
        text = self.tokenizer(
            [n.lower() for n in names],
            padding="max_length",
            max_length=length,
            truncation=True,
            return_tensors="pt",
        )
        pixels = self._pixels(rgb)
        out = self.model(
            input_ids=text["input_ids"].to(self.device),
            attention_mask=text["attention_mask"].to(self.device),
            pixel_values=pixels["pixel_values"],
        )
        scores = to_numpy(out.logits[0].float().sigmoid())  # (boxes, queries)
        width, height = rgb.size
        side = max(width, height) if self.kind == "owlv2" else None  # OWLv2 pads to a square
        scale = (side, side) if side is not None else (width, height)
        boxes = center_boxes_to_pixels(to_numpy(out.pred_boxes[0]), scale, rgb.size)
        # Each box counts for the one name it scores highest on, as transformers' OWL
        # post-processing labels it (the thresholds above were set on that rule): a cat's box
        # that also half-matches "dog" is not a dog.
        best = scores.argmax(axis=1)
        return {
            name: [Instance(box, float(scores[k, q])) for k, box in enumerate(boxes) if best[k] == q]
            for q, name in enumerate(names)
        }


def name_token_spans(offsets: Sequence[tuple[int, int]], text: str, names: Sequence[str]) -> list[list[int]]:
    """For each name (in the order it appears in ``text``, joined by " . "), the indices of the
    tokens whose characters fall inside it; special tokens (empty offsets) belong to none."""
    spans, start = [], 0
    for name in names:
        begin = text.index(name, start)
        end = begin + len(name)
        start = end
        spans.append([j for j, (a, b) in enumerate(offsets) if b > a and a >= begin and b <= end])
    return spans


class GroundingDinoDetector(_TransformersDetector):
    """Grounding DINO: the names as one caption; each box scored per name by its best token."""

    def _candidates(self, rgb: Image.Image, names: list[str]) -> dict[str, list[Instance]]:
        lowered = [n.lower().strip() for n in names]
        caption = " . ".join(lowered) + " ."
        text = self.tokenizer(caption, return_offsets_mapping=True, return_tensors="pt")
        offsets = [(int(a), int(b)) for a, b in text.pop("offset_mapping")[0].tolist()]
        spans = name_token_spans(offsets, caption, lowered)
        inputs = {
            k: v.to(self.device)
            for k, v in text.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        out = self.model(**inputs, **self._pixels(rgb))
        probs = to_numpy(out.logits[0].float().sigmoid())  # (queries, text positions)
        boxes = center_boxes_to_pixels(to_numpy(out.pred_boxes[0]), rgb.size, rgb.size)
        found: dict[str, list[Instance]] = {}
        for name, tokens in zip(names, spans, strict=True):
            usable = [t for t in tokens if t < probs.shape[1]]
            if not usable:
                found[name] = []
                continue
            scores = probs[:, usable].max(axis=1)
            found[name] = [Instance(box, float(s)) for box, s in zip(boxes, scores, strict=True)]
        return found


class Mask2FormerDetector(_TransformersDetector):
    """Mask2Former instance segmentation on a closed label set; names matched to its labels."""

    def _candidates(self, rgb: Image.Image, names: list[str]) -> dict[str, list[Instance]]:
        labels = {int(k): canonical_name(v) for k, v in self.model.config.id2label.items()}
        wanted = {canonical_name(n): n for n in names}
        found: dict[str, list[Instance]] = {n: [] for n in names}
        out = self.model(pixel_values=self._pixels(rgb)["pixel_values"])
        result = self.image_processor.post_process_instance_segmentation(
            out, threshold=0.0, target_sizes=[(rgb.height, rgb.width)], return_binary_maps=True
        )[0]
        segmentation = result.get("segmentation")
        if segmentation is None:
            return found
        masks = np.asarray(segmentation.cpu() if isinstance(segmentation, torch.Tensor) else segmentation)
        for k, info in enumerate(result.get("segments_info", [])):
            name = wanted.get(labels.get(int(info["label_id"]), ""))
            if name is None or k >= len(masks):
                continue
            mask = masks[k].astype(bool)
            box = mask_box(mask)
            if box is not None:
                found[name].append(Instance(box, float(info["score"]), mask))
        return found

    def labels(self) -> set[str]:
        """The canonical names this checkpoint knows."""
        return {canonical_name(v) for v in self.model.config.id2label.values()}


# ------------------------------------------------------------------------------------ loading
CHECKPOINT = CheckpointKind(FIELD, FIX, KNOWN_TYPES, "a detector this knows")


@dataclass(frozen=True)
class DetectorSpec:
    """What ``--detector`` names, checked without loading weights; ``kind`` None for a hub id."""

    source: str
    kind: str | None


def resolve_detector(spec: str) -> DetectorSpec:
    """A folder whose config is a known detector, or a hub id (checked when loaded)."""
    text = spec.strip()
    if not text:
        raise InvalidInputError(FIELD, "is empty", FIX)
    return DetectorSpec(*resolve_checkpoint(text, CHECKPOINT))


def build_detector(
    model: Any, image_processor: Any, tokenizer: Any = None, device: Any = None, name: str | None = None
) -> Detector:
    """The detector class for ``model``'s config type around an already built model."""
    kind = str(getattr(model.config, "model_type", ""))
    if kind in OWL_TYPES:
        return OwlDetector(model, image_processor, tokenizer, device, name)
    if kind in GROUNDING_TYPES:
        return GroundingDinoDetector(model, image_processor, tokenizer, device, name)
    if kind in MASK2FORMER_TYPES:
        return Mask2FormerDetector(model, image_processor, None, device, name)
    raise InvalidInputError(FIELD, f"a '{kind}' model is not a detector this knows", FIX)


def load_detector(spec: str | DetectorSpec, device: str | torch.device | None = None) -> Detector:
    """Load what ``spec`` names; a folder never touches the network."""
    from transformers import AutoImageProcessor, AutoTokenizer

    resolved = spec if isinstance(spec, DetectorSpec) else resolve_detector(spec)
    source = resolved.source
    kind = resolved.kind or hub_model_type(source, CHECKPOINT)
    try:
        if kind in OWL_TYPES:
            from transformers import Owlv2ForObjectDetection, OwlViTForObjectDetection

            model = (
                Owlv2ForObjectDetection if kind == "owlv2" else OwlViTForObjectDetection
            ).from_pretrained(source)
        elif kind in GROUNDING_TYPES:
            from transformers import AutoModelForZeroShotObjectDetection

            model = AutoModelForZeroShotObjectDetection.from_pretrained(source)
        else:
            from transformers import Mask2FormerForUniversalSegmentation

            model = Mask2FormerForUniversalSegmentation.from_pretrained(source)
        image_processor = AutoImageProcessor.from_pretrained(source)
        tokenizer = None if kind in MASK2FORMER_TYPES else AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise BackendError(f"detector: cannot load the {kind} checkpoint in {source} ({error})") from error
    return build_detector(model, image_processor, tokenizer, default_device(device), name=f"{kind}:{source}")
