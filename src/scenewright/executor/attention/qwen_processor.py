"""Qwen-Image's attention sites: its dual-stream blocks, with the multimodal RoPE and text mask.

Reproduces ``QwenDoubleStreamAttnProcessor2_0``'s arithmetic (separate image and text
projections, per-stream RMS norms, complex rotary embeddings with the text placed after the
image's largest position, joint attention over [text; image]); prompts padded to a common length
mask their padding out of every key, in the default kernel and in the engine's passes alike.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_qwenimage import apply_rotary_emb_qwen

from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.schedules import Site


def qwen_qkv(
    attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, image_rotary_emb: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of a Qwen-Image block as its processor forms them, [text; image],
    (B, S, H, D)."""
    head_dim = attn.inner_dim // attn.heads
    image = [proj(hidden_states).unflatten(-1, (-1, head_dim)) for proj in (attn.to_q, attn.to_k, attn.to_v)]
    text = [
        proj(encoder_hidden_states).unflatten(-1, (-1, head_dim))
        for proj in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)
    ]
    if attn.norm_q is not None:
        image[0] = attn.norm_q(image[0])
    if attn.norm_k is not None:
        image[1] = attn.norm_k(image[1])
    if attn.norm_added_q is not None:
        text[0] = attn.norm_added_q(text[0])
    if attn.norm_added_k is not None:
        text[1] = attn.norm_added_k(text[1])
    if image_rotary_emb is not None:
        image_freqs, text_freqs = image_rotary_emb
        for i in (0, 1):
            image[i] = apply_rotary_emb_qwen(image[i], image_freqs, use_real=False)
            text[i] = apply_rotary_emb_qwen(text[i], text_freqs, use_real=False)
    query, key, value = (torch.cat([t, i], dim=1) for t, i in zip(text, image, strict=True))
    return query, key, value


class QwenEngineProcessor:
    """A Qwen-Image dual-stream block's joint attention, routed through the engine."""

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
        encoder_hidden_states_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if encoder_hidden_states is None or attention_mask is not None:
            raise ValueError("a Qwen-Image block needs its text stream and takes no external attention_mask")
        query, key, value = qwen_qkv(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        text_len = encoder_hidden_states.shape[1]
        engine = self.engine
        engine.set_padding(encoder_hidden_states_mask)
        query, key, value = engine.rewrite(self.site, query, key, value, text_len)
        if engine.modifies(self.site):
            out = engine.attend(self.site, query, key, value, text_len)
        else:
            mask = None
            if encoder_hidden_states_mask is not None:
                image = torch.ones(hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device)
                mask = torch.cat([encoder_hidden_states_mask.to(torch.bool), image], dim=1)[:, None, None, :]
            out = dispatch_attention_fn(
                query,
                key,
                value,
                attn_mask=mask,
                dropout_p=0.0,
                is_causal=False,
                backend=self._attention_backend,
                parallel_config=self._parallel_config,
            )
        engine.observe(self.site, query, key, value, out, text_len)
        joint = out.flatten(2, 3).to(query.dtype)
        text_out, image_out = joint[:, :text_len], joint[:, text_len:]
        image_out = attn.to_out[0](image_out.contiguous())
        if len(attn.to_out) > 1:
            image_out = attn.to_out[1](image_out)
        return image_out, attn.to_add_out(text_out.contiguous())


def qwen_processors(transformer: Any, engine: AttentionEngine) -> dict[str, Any]:
    """One processor per dual-stream block of a QwenImageTransformer2DModel, named "double"."""
    return {
        name: QwenEngineProcessor(engine, ("double", int(name.split(".")[1])))
        for name in transformer.attn_processors
    }
