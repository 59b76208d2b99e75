"""Sizes of the embedded model, apart from the model code so that the CLI can read them cheaply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREDICTIONS = ("sample", "velocity")
CODEC_FILE = "codec.json"  # a model folder's TinyConfig, beside its weights


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the embedded model; stored as ``codec.json`` beside the weights."""

    image_size: int = 64
    # 8x8 pixel patches (8x8 tokens): a third of the cost per training sample of 4x4 patches,
    # which on a CPU decides how far training gets; x0 prediction keeps such wide tokens sharp.
    patch: int = 8
    max_text_tokens: int = 24
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    double_blocks: int = 2
    single_blocks: int = 4
    heads: int = 4
    head_dim: int = 32
    default_steps: int = 20
    default_guidance: float = 4.0
    # CFG only where the noise level is at most this; at high noise it pushes a one-object prompt
    # towards an empty image (fewer objects than the unconditional average), see the README.
    default_guidance_max_sigma: float = 1.0
    # The prompt that draws nothing, for the background of regional and Stitch passes: an empty
    # prompt is the unconditional one, which draws a random scene. Set when shipping a model
    # trained with empty scenes (``--empty-fraction``).
    default_background_prompt: str = ""
    # What the transformer outputs: "sample" (the clean image, converted to a velocity by the
    # backend; see ``velocity_from_output``) or "velocity" (diffusers' FLUX convention). With
    # 192 values a token and 128 hidden units, predicting noise is out of reach but the clean
    # image (flat colours, edges) is not: the argument of "Back to Basics" (Li & He, 2025).
    prediction: str = "sample"
    # Smallest t the sample-to-velocity conversion divides by (it is ``(x_t - x0) / t``).
    min_t: float = 0.05

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, not {self.prediction!r}")
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")

    @property
    def channels(self) -> int:
        return 3 * self.patch * self.patch


def read_codec(folder: str | Path) -> dict[str, Any]:
    """The ``TinyConfig`` fields in ``folder``'s ``codec.json`` (FileNotFoundError if it has none).

    The one reader of the file: loading a model, shipping one and continuing one from it agree.
    """
    fields = json.loads((Path(folder) / CODEC_FILE).read_text())
    fields.setdefault("prediction", "velocity")  # folders written before the field existed
    return fields
