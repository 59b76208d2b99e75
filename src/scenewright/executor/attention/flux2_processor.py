"""Engine processors for FLUX.2's two attention sites.

FLUX.2's double-stream blocks (``Flux2Attention``) attend over [text; image] like FLUX.1's, with
their own projections; its single-stream blocks (``Flux2ParallelSelfAttention``) take [text;
image] as one tensor and fuse the attention's q, k, v with the MLP's input in one projection and
the attention's output with the MLP's output in another. Each processor here reproduces its
diffusers counterpart (``Flux2AttnProcessor``, ``Flux2ParallelSelfAttnProcessor``) and routes the
attention itself through the engine, so every edit sees q/k/v as on FLUX.1: ``(B, S, H, D)``
ordered [text; image], rotary applied. Sites are named ("double", i) and ("single", i).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux2 import _get_qkv_projections

from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.schedules import Site

_KINDS = {"transformer_blocks": "double", "single_transformer_blocks": "single"}


def is_flux2(transformer: Any) -> bool:
    """Whether ``transformer`` is a ``Flux2Transformer2DModel`` (by class name: no import needed)."""
    return type(transformer).__name__ == "Flux2Transformer2DModel"


def _rotate(query: torch.Tensor, key: torch.Tensor, rotary: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if rotary is None:
        return query, key
    return apply_rotary_emb(query, rotary, sequence_dim=1), apply_rotary_emb(key, rotary, sequence_dim=1)


def _attend(
    processor: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    text_len: int,
    attention_mask: torch.Tensor | None,
) -> torch.Tensor:
    """The engine's rewrite, pass and observers at one site; diffusers' own kernel where no edit
    changes it. Returns (B, S, H*D)."""
    engine: AttentionEngine = processor.engine
    site: Site = processor.site
    query, key, value = engine.rewrite(site, query, key, value, text_len)
    if engine.modifies(site):
        if attention_mask is not None:
            raise ValueError("attention edits cannot be combined with an explicit attention_mask")
        out = engine.attend(site, query, key, value, text_len)
    else:
        out = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=processor._attention_backend,
            parallel_config=processor._parallel_config,
        )
    engine.observe(site, query, key, value, out, text_len)
    return out.flatten(2, 3).to(query.dtype)


def _single_text_len(engine: AttentionEngine, sequence: int) -> int:
    """Single-stream blocks see [text; image] as one sequence: the grid says where it splits."""
    if engine.grid == (0, 0) and engine.edits:
        raise RuntimeError(
            "the attention engine has no token grid: pass it to sample() as a hook, "
            "or call engine.begin(grid, num_steps) before a bare forward pass"
        )
    return sequence - engine.grid[0] * engine.grid[1]


class Flux2EngineProcessor:
    """FLUX.2 double-stream blocks: separate text and image projections, joint attention."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, engine: AttentionEngine, site: Site) -> None:
        self.engine = engine
        self.site = site

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
    ) -> Any:
        query, key, value, enc_query, enc_key, enc_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states
        )
        heads = (-1, attn.head_dim)
        query = attn.norm_q(query.unflatten(-1, heads))
        key = attn.norm_k(key.unflatten(-1, heads))
        value = value.unflatten(-1, heads)
        text_len = 0
        if encoder_hidden_states is not None and attn.added_kv_proj_dim is not None:
            text_len = encoder_hidden_states.shape[1]
            query = torch.cat([attn.norm_added_q(enc_query.unflatten(-1, heads)), query], dim=1)
            key = torch.cat([attn.norm_added_k(enc_key.unflatten(-1, heads)), key], dim=1)
            value = torch.cat([enc_value.unflatten(-1, heads), value], dim=1)
        query, key = _rotate(query, key, image_rotary_emb)
        hidden_states = _attend(self, query, key, value, text_len, attention_mask)
        if text_len:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
                [text_len, hidden_states.shape[1] - text_len], dim=1
            )
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if text_len:
            return hidden_states, encoder_hidden_states
        return hidden_states


class Flux2ParallelEngineProcessor:
    """FLUX.2 single-stream blocks: one fused projection to q, k, v and the MLP, one back."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, engine: AttentionEngine, site: Site) -> None:
        self.engine = engine
        self.site = site

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
    ) -> torch.Tensor:
        fused = attn.to_qkv_mlp_proj(hidden_states)
        qkv, mlp = torch.split(fused, [3 * attn.inner_dim, fused.shape[-1] - 3 * attn.inner_dim], dim=-1)
        query, key, value = (t.unflatten(-1, (-1, attn.head_dim)) for t in qkv.chunk(3, dim=-1))
        query, key = _rotate(attn.norm_q(query), attn.norm_k(key), image_rotary_emb)
        text_len = _single_text_len(self.engine, query.shape[1])
        attended = _attend(self, query, key, value, text_len, attention_mask)
        return attn.to_out(torch.cat([attended, attn.mlp_act_fn(mlp)], dim=-1))


def flux2_processors(transformer: Any, engine: AttentionEngine) -> dict[str, Any]:
    """One engine processor per attention module of a ``Flux2Transformer2DModel``."""
    processors: dict[str, Any] = {}
    for name in transformer.attn_processors:
        kind, index = _KINDS[name.split(".")[0]], int(name.split(".")[1])
        cls = Flux2EngineProcessor if kind == "double" else Flux2ParallelEngineProcessor
        processors[name] = cls(engine, (kind, index))
    return processors
