"""Attention processors that route joint attention through an :class:`AttentionEngine`.

Each reproduces its diffusers counterpart's arithmetic exactly (``FluxAttnProcessor`` for FLUX
double and single blocks, ``JointAttnProcessor2_0`` for SD3 joint blocks and the image-only
``attn2`` of SD3.5 MM-DiT-X blocks); where no edit changes a site they call the same kernel the
same way, so the output is the default processor's. Edits see q/k/v in one canonical layout,
``(B, S, H, D)`` ordered [text; image], whatever the family's own order.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_dispatch import dispatch_attention_fn

from scenewright.backends.flux import flux_qkv
from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.schedules import Site


class FluxEngineProcessor:
    """FLUX double-stream (text and image inputs) and single-stream ([text; image] input) blocks."""

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
        query, key, value = flux_qkv(attn, hidden_states, encoder_hidden_states, image_rotary_emb)

        engine = self.engine
        if encoder_hidden_states is not None:
            text_len = encoder_hidden_states.shape[1]
        else:  # single-stream blocks see [text; image] as one sequence: the grid says where it splits
            if engine.grid == (0, 0) and engine.edits:
                raise RuntimeError(
                    "the attention engine has no token grid: pass it to sample() as a hook, "
                    "or call engine.begin(grid, num_steps) before a bare forward pass"
                )
            text_len = query.shape[1] - engine.grid[0] * engine.grid[1]
        query, key, value = engine.rewrite(self.site, query, key, value, text_len)
        if engine.modifies(self.site):
            if attention_mask is not None:
                raise ValueError("attention edits cannot be combined with an explicit attention_mask")
            out = engine.attend(self.site, query, key, value, text_len)
        else:
            out = dispatch_attention_fn(
                query,
                key,
                value,
                attn_mask=attention_mask,
                backend=self._attention_backend,
                parallel_config=self._parallel_config,
            )
        engine.observe(self.site, query, key, value, out, text_len)
        hidden_states = out.flatten(2, 3).to(query.dtype)

        if encoder_hidden_states is not None:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
                [text_len, hidden_states.shape[1] - text_len], dim=1
            )
            hidden_states = attn.to_out[1](attn.to_out[0](hidden_states.contiguous()))
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states.contiguous())
            return hidden_states, encoder_hidden_states
        return hidden_states


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, S, H*D) -> (B, H, S, D), as JointAttnProcessor2_0 reshapes."""
    return x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)


class SD3EngineProcessor:
    """SD3/SD3.5 joint attention over [image; text], and the image-only ``attn2`` of MM-DiT-X."""

    def __init__(self, engine: AttentionEngine, site: Site, image_only: bool = False) -> None:
        self.engine = engine
        self.site = site
        self.image_only = image_only

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> Any:
        n_image = hidden_states.shape[1]
        query = _heads(attn.to_q(hidden_states), attn.heads)
        key = _heads(attn.to_k(hidden_states), attn.heads)
        value = _heads(attn.to_v(hidden_states), attn.heads)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        text_len = 0
        if encoder_hidden_states is not None:
            text_len = encoder_hidden_states.shape[1]
            enc_query = _heads(attn.add_q_proj(encoder_hidden_states), attn.heads)
            enc_key = _heads(attn.add_k_proj(encoder_hidden_states), attn.heads)
            enc_value = _heads(attn.add_v_proj(encoder_hidden_states), attn.heads)
            if attn.norm_added_q is not None:
                enc_query = attn.norm_added_q(enc_query)
            if attn.norm_added_k is not None:
                enc_key = attn.norm_added_k(enc_key)
            query = torch.cat([query, enc_query], dim=2)
            key = torch.cat([key, enc_key], dim=2)
            value = torch.cat([value, enc_value], dim=2)

        engine = self.engine
        if self.image_only:
            out = engine.attend_image_only(self.site, query, key, value)
            if out is None:
                out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        else:
            # Edits work on (B, S, H, D) in [text; image] order; SD3 keeps [image; text] in (B, H, S, D).
            # Plain sites skip the reordering entirely.
            modified, observers = engine.modifies(self.site), engine.observers(self.site)
            if modified or observers or engine.rewrites(self.site):
                q_c, k_c, v_c = (self._canonical(t, n_image) for t in (query, key, value))
                q_c, k_c, v_c = engine.rewrite(self.site, q_c, k_c, v_c, text_len)
            if modified:
                out_c = engine.attend(self.site, q_c, k_c, v_c, text_len)
                out = torch.cat([out_c[:, text_len:], out_c[:, :text_len]], dim=1).transpose(1, 2)
            else:
                out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
            if observers:
                out_c = self._canonical(out, n_image)
                engine.observe(self.site, q_c, k_c, v_c, out_c, text_len)
        batch = hidden_states.shape[0]
        hidden_states = out.transpose(1, 2).reshape(batch, -1, attn.heads * query.shape[-1])
        hidden_states = hidden_states.to(query.dtype)
        if encoder_hidden_states is not None:
            hidden_states, encoder_hidden_states = hidden_states[:, :n_image], hidden_states[:, n_image:]
            if not attn.context_pre_only:
                encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if encoder_hidden_states is not None:
            return hidden_states, encoder_hidden_states
        return hidden_states

    @staticmethod
    def _canonical(x: torch.Tensor, n_image: int) -> torch.Tensor:
        """(B, H, [image; text], D) -> (B, [text; image], H, D)."""
        x = x.transpose(1, 2)
        return torch.cat([x[:, n_image:], x[:, :n_image]], dim=1)
