"""Chroma's attention sites: FLUX.1's double and single blocks, with its T5 padding mask kept.

ChromaPipeline hands each block a (B, 1, S, S) mask of 0/1 floats (the outer product of the
tokens that count) that SDPA adds to the logits. Where no edit changes a site the mask goes to
the kernel untouched; where one does, the engine is told which tokens count and adds -1 to a
counted query's logits on the others, which is the same softmax (a row's common +1 cancels).
"""

from __future__ import annotations

from typing import Any

import torch

from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.processors import FluxEngineProcessor

# What a counted query adds to a padding key's logit, relative to a counted key.
CHROMA_PADDING_LOGIT = -1.0
_KINDS = {"transformer_blocks": "double", "single_transformer_blocks": "single"}


class ChromaEngineProcessor(FluxEngineProcessor):
    """The FLUX processor, with Chroma's additive padding mask carried into the engine's passes."""

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
    ) -> Any:
        keep = None
        if attention_mask is not None:
            # Column -1 is an image key, which always counts: it reads each query's own 0/1.
            keep = attention_mask[:, 0, :, -1] > 0
        self.engine.set_padding(keep, CHROMA_PADDING_LOGIT)
        if self.engine.modifies(self.site):
            attention_mask = None  # the engine's passes carry it
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)


def chroma_processors(transformer: Any, engine: AttentionEngine) -> dict[str, Any]:
    """One processor per attention module of a ChromaTransformer2DModel, named by its block."""
    processors: dict[str, Any] = {}
    for name in transformer.attn_processors:
        kind, index = name.split(".")[:2]
        processors[name] = ChromaEngineProcessor(engine, (_KINDS[kind], int(index)))
    return processors
