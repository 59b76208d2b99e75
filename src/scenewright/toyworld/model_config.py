"""Sizes of the embedded model, apart from the model code so that the CLI can read them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the embedded model; stored as ``codec.json`` beside the weights."""

    image_size: int = 64
    patch: int = 4
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

    @property
    def channels(self) -> int:
        return 3 * self.patch * self.patch
