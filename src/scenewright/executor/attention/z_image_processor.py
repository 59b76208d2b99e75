"""The engine's processor for Z-Image's single-stream blocks, and where it is installed.

Z-Image runs one sequence per row through shared blocks: ``[image (N); image pad; caption (T)]``,
the image padded by the transformer to a multiple of 32 tokens with a learned pad token. The
processor reproduces ``ZSingleStreamAttnProcessor`` exactly where no edit acts; where one does,
it hands the engine the canonical ``[caption; image]`` view (image pad tokens left out: they are
not on the token grid, and the engine's masks are built over the grid and the caption) and puts
the outputs back in the model's order, the pad tokens taking plain attention over the whole row.

The per-modality refiners (``noise_refiner`` over the image, ``context_refiner`` over the caption)
keep diffusers' own processor: no text meets an image there, so no edit has anything to act on.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.attention_processor import Attention
from diffusers.models.transformers.transformer_z_image import ZSingleStreamAttnProcessor

from scenewright.backends.z_image import image_pad
from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.schedules import Site


def z_image_qkv(
    attn: Any, hidden_states: torch.Tensor, freqs_cis: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values as ZSingleStreamAttnProcessor forms them: projected, RMS-normed,
    rotated by the complex RoPE factors in float32; (B, S, H, D)."""
    query = attn.to_q(hidden_states).unflatten(-1, (attn.heads, -1))
    key = attn.to_k(hidden_states).unflatten(-1, (attn.heads, -1))
    value = attn.to_v(hidden_states).unflatten(-1, (attn.heads, -1))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    if freqs_cis is not None:
        query, key = _rotate(query, freqs_cis), _rotate(key, freqs_cis)
    return query, key, value


def _rotate(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * freqs_cis.unsqueeze(2)).flatten(3).type_as(x)


class ZImageEngineProcessor:
    """Z-Image's single-stream attention, routed through an :class:`AttentionEngine`."""

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
        freqs_cis: torch.Tensor | None = None,
    ) -> torch.Tensor:
        query, key, value = z_image_qkv(attn, hidden_states, freqs_cis)
        engine, site = self.engine, self.site
        modified, observers = engine.modifies(site), engine.observers(site)
        if modified or observers or engine.rewrites(site):
            if engine.grid == (0, 0):
                raise RuntimeError(
                    "the attention engine has no token grid: pass it to sample() as a hook, "
                    "or call engine.begin(grid, num_steps) before a bare forward pass"
                )
            if attention_mask is not None:
                raise ValueError("attention edits need one caption length per batch (no key mask)")
            out = self._edited(query, key, value, modified, bool(observers))
        else:
            out = self._plain(query, key, value, attention_mask)
        hidden = out.flatten(2, 3).to(query.dtype)
        output = attn.to_out[0](hidden)
        if len(attn.to_out) > 1:
            output = attn.to_out[1](output)
        return output

    def _plain(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        if mask is not None and mask.ndim == 2:
            mask = mask[:, None, None, :]
        out: torch.Tensor = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        return out

    def _edited(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, modified: bool, observed: bool
    ) -> torch.Tensor:
        engine, site = self.engine, self.site
        rows, cols = engine.grid
        n_image = rows * cols
        pad = image_pad(rows, cols)
        seq = query.shape[1]
        text_len = seq - n_image - pad
        order = self._canonical_order(n_image, pad, seq, query.device)
        q_c, k_c, v_c = (t[:, order] for t in (query, key, value))
        q_c, k_c, v_c = engine.rewrite(site, q_c, k_c, v_c, text_len)
        if modified:
            out_c = engine.attend(site, q_c, k_c, v_c, text_len)
            out = torch.empty_like(query)
            out[:, order] = out_c
            if pad:  # the image pad tokens: plain attention over the row, as the model runs them
                pads = slice(n_image, n_image + pad)
                out[:, pads] = self._plain(query[:, pads], key, value, None)
        else:
            out = self._plain(query, key, value, None)
            out_c = out[:, order] if observed else out
        if observed:
            engine.observe(site, q_c, k_c, v_c, out_c, text_len)
        return out

    def _canonical_order(self, n_image: int, pad: int, seq: int, device: torch.device) -> torch.Tensor:
        """Positions of [caption; image] in the model's [image; image pad; caption] row."""
        cache_key = ("z-image order", n_image, pad, seq, str(device))
        cached = self.engine.cache.get(cache_key)
        if cached is None:
            caption = torch.arange(n_image + pad, seq, device=device)
            cached = torch.cat([caption, torch.arange(n_image, device=device)])
            self.engine.cache[cache_key] = cached
        order: torch.Tensor = cached
        return order


def is_z_image(transformer: Any) -> bool:
    """A ZImageTransformer2DModel: single-stream ``layers`` after per-modality refiners."""
    return all(hasattr(transformer, name) for name in ("layers", "noise_refiner", "context_refiner"))


def z_image_attention(transformer: Any) -> dict[str, Any]:
    """Every attention module by its path: ZImageTransformer2DModel has no ``attn_processors``."""
    return {name: module for name, module in transformer.named_modules() if isinstance(module, Attention)}


def z_image_processor_map(transformer: Any) -> dict[str, Any]:
    """The installed processor of every attention module, by the module's path."""
    return {name: module.processor for name, module in z_image_attention(transformer).items()}


def set_z_image_processors(transformer: Any, processors: dict[str, Any]) -> None:
    """Install ``processors`` by module path (diffusers' ``set_attn_processor`` for a model without it)."""
    for name, module in z_image_attention(transformer).items():
        module.set_processor(processors[name])


def z_image_processors(transformer: Any, engine: AttentionEngine) -> dict[str, Any]:
    """The engine's processor on every single-stream block (site ("joint", i)); the refiners (and
    the Omni variant's SigLIP refiner) keep diffusers' processor."""
    processors: dict[str, Any] = {}
    for name in z_image_attention(transformer):
        parts = name.split(".")  # e.g. layers.3.attention
        if parts[0] == "layers":
            processors[name] = ZImageEngineProcessor(engine, ("joint", int(parts[1])))
        else:
            processors[name] = ZSingleStreamAttnProcessor()
    return processors
