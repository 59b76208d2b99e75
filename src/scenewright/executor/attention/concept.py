"""ConceptAttention saliency for FLUX: concept tokens on their own residual stream.

Concept embeddings (one token per concept, from the text encoder) enter through the
transformer's ``context_embedder`` and are carried through every double-stream block with that
block's text-stream weights (adaLN, q/k/v, output projection, feed-forward). Concept queries
attend to [concepts; image] keys; nobody attends to the concepts, and none of this writes into the
model's tensors, so the image is bit-identical. A block's map is the dot product of the concept
attention outputs with the image attention outputs (per head, summed), softmaxed over concepts;
maps average over the chosen blocks and steps. Any aspect ratio: maps take the token grid.

``modulation`` sets the concept stream's adaLN input: "scene" (the image's own: the prompt's pooled
vector and the render's guidance) or "paper" (ConceptAttention's code: a zero pooled vector and
guidance 0, with the same timestep).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from scenewright.executor.attention.edits import Edit
from scenewright.executor.attention.reading import READ_BUDGET_BYTES
from scenewright.executor.attention.schedules import Site
from scenewright.executor.attention.view import EngineView

MODULATIONS = ("scene", "paper")


def _flux2_text_norm(block: Any, stream: torch.Tensor, mod: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What FLUX.1's ``norm1_context(stream, emb)`` returns, from a FLUX.2 block's text modulation:
    the normed stream and the attention gate, MLP shift, scale and gate as (B, D)."""
    shift, scale, gate, shift_mlp, scale_mlp, gate_mlp = mod.reshape(mod.shape[0], -1).chunk(6, dim=-1)
    normed = block.norm1_context(stream) * (1 + scale[:, None]) + shift[:, None]
    return normed, gate, shift_mlp, scale_mlp, gate_mlp


@dataclass
class ConceptAttention(Edit):
    """Saliency of ``concepts`` ((C, D) or (B, C, D) raw text-encoder embeddings) per image token.

    ``sites`` choose the double blocks whose maps are averaged (the paper: late ones) and the steps;
    the concept stream itself runs through every double block of a chosen step.
    """

    concepts: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    modulation: str = "scene"
    stream: torch.Tensor | None = field(default=None, init=False, repr=False)
    total: torch.Tensor | None = field(default=None, init=False, repr=False)
    count: int = field(default=0, init=False)
    grid: tuple[int, int] = field(default=(0, 0), init=False)
    budget: int = READ_BUDGET_BYTES
    _block: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _pending: Any = field(default=None, init=False, repr=False)
    _inputs: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _temb: torch.Tensor | None = field(default=None, init=False, repr=False)
    _engine: EngineView | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        self.stream, self.total, self.count, self._pending = None, None, 0, None

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return site[0] == "double" and self.sites.has_step(step)

    def _running(self) -> bool:
        engine = self._engine
        return engine is not None and self.sites.has_step(engine.step)

    # ---------------------------------------------------------------- hooks
    def install(self, engine: EngineView, transformer: Any) -> list[Any]:
        """Hooks that start the stream per forward pass and advance it around each double block."""
        if not hasattr(transformer, "single_transformer_blocks"):
            raise ValueError("ConceptAttention needs a FLUX-class transformer (double-stream blocks)")
        if self.modulation not in MODULATIONS:
            raise ValueError(f"modulation {self.modulation!r}: use one of {', '.join(MODULATIONS)}")
        self._engine = engine
        handles = [transformer.register_forward_pre_hook(self._start, with_kwargs=True)]
        for block in transformer.transformer_blocks:
            handles.append(block.register_forward_pre_hook(self._enter, with_kwargs=True))
            handles.append(block.register_forward_hook(self._leave))
        return handles

    def _start(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        """Mark a new forward pass; the stream itself starts at the first double block.

        Under ``enable_model_cpu_offload`` the weights reach the device only inside the
        transformer's forward (after its pre-hooks), so ``context_embedder`` runs there.
        """
        self.stream, self._temb = None, None
        self._pending = module if self._running() else None
        self._inputs = {key: kwargs.get(key) for key in ("timestep", "guidance", "pooled_projections")}

    def _begin_stream(self, hidden_states: torch.Tensor) -> None:
        module, self._pending = self._pending, None
        embedder = module.context_embedder
        concepts = self.concepts.to(hidden_states.device, embedder.weight.dtype)
        if concepts.dim() == 2:
            concepts = concepts[None].expand(hidden_states.shape[0], -1, -1)
        self.stream = embedder(concepts)
        # Chroma has no pooled vector or guidance to zero: its blocks' own modulation is the paper's.
        if self.modulation == "paper" and self._inputs["pooled_projections"] is not None:
            self._temb = self._paper_temb(module, hidden_states.dtype)

    def _paper_temb(self, module: Any, dtype: torch.dtype) -> torch.Tensor:
        """The transformer's time embedding at this timestep with a zero pooled vector and guidance
        0 (as FluxTransformer2DModel.forward scales them)."""
        timestep = self._inputs["timestep"].to(dtype) * 1000
        guidance = self._inputs["guidance"]
        if hasattr(module, "time_guidance_embed"):  # FLUX.2: no pooled vector; the text stream's modulation
            zero = None if guidance is None else torch.zeros_like(guidance).to(dtype)
            return module.double_stream_modulation_txt(module.time_guidance_embed(timestep, zero))
        pooled = torch.zeros_like(self._inputs["pooled_projections"])
        if guidance is None:
            return module.time_text_embed(timestep, pooled)
        return module.time_text_embed(timestep, torch.zeros_like(guidance).to(dtype), pooled)

    def _enter(self, block: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if self._pending is not None:
            self._begin_stream(kwargs["hidden_states"])
        if self.stream is None:
            return
        attn = block.attn
        if "temb_mod_txt" in kwargs:  # FLUX.2: the blocks share modulation vectors made once a pass
            normed, gate_msa, shift_mlp, scale_mlp, gate_mlp = _flux2_text_norm(
                block, self.stream, kwargs["temb_mod_txt"] if self._temb is None else self._temb
            )
        else:
            temb = kwargs["temb"] if self._temb is None else self._temb
            if temb.ndim == 3:  # Chroma: each block's own [image; text] modulation rows, no pooled vector
                temb = temb[:, 6:]
            normed, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.norm1_context(self.stream, emb=temb)
        heads = (-1, attn.head_dim)
        self._block = {
            "query": attn.norm_added_q(attn.add_q_proj(normed).unflatten(-1, heads)),
            "key": attn.norm_added_k(attn.add_k_proj(normed).unflatten(-1, heads)),
            "value": attn.add_v_proj(normed).unflatten(-1, heads),
            "mod": (gate_msa, shift_mlp, scale_mlp, gate_mlp),
        }

    def observe(
        self,
        engine: EngineView,
        site: Site,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        output: torch.Tensor,
        text_len: int,
    ) -> None:
        """Concept queries over [concepts; image]; record a map if this block is chosen."""
        if self.stream is None or "query" not in self._block:
            return
        keys = torch.cat([self._block["key"], key[:, text_len:]], dim=1).transpose(1, 2)
        values = torch.cat([self._block["value"], value[:, text_len:]], dim=1).transpose(1, 2)
        concept_out = F.scaled_dot_product_attention(self._block["query"].transpose(1, 2), keys, values)
        concept_out = concept_out.transpose(1, 2)  # (B, C, H, D)
        self._block["out"] = concept_out
        if self.sites.has_block(site):
            self._record(engine, concept_out, output[:, text_len:])

    def _record(self, engine: EngineView, concept_out: torch.Tensor, image_out: torch.Tensor) -> None:
        """Add this block's (B, C, N) map: per image token, a softmax over the concepts of the
        dot products of attention outputs, in float32 over chunks of image tokens."""
        batch, n_image, heads, dim = image_out.shape
        if self.total is None:
            self.total = torch.zeros(batch, concept_out.shape[1], n_image, device=image_out.device)
        concepts = concept_out.float()
        rows = max(1, self.budget // (4 * batch * heads * dim * 2))
        for start in range(0, n_image, rows):
            chunk = image_out[:, start : start + rows].float()
            scores = torch.einsum("bchd,bnhd->bcn", concepts, chunk)
            self.total[:, :, start : start + rows] += scores.softmax(dim=1)
        self.count += 1
        self.grid = engine.grid

    def _leave(self, block: Any, args: Any, output: Any) -> None:
        if self.stream is None or "out" not in self._block:
            return
        attn = block.attn
        gate_msa, shift_mlp, scale_mlp, gate_mlp = self._block["mod"]
        attended = attn.to_add_out(self._block["out"].flatten(2, 3).to(self.stream.dtype))
        stream = self.stream + gate_msa.unsqueeze(1) * attended
        normed = block.norm2_context(stream) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        self.stream = stream + gate_mlp.unsqueeze(1) * block.ff_context(normed)
        if self.stream.dtype == torch.float16:  # as FLUX's own text stream does in fp16
            self.stream = self.stream.clip(-65504, 65504)
        self._block = {}

    def maps(self) -> torch.Tensor:
        """(B, C, rows, cols): per image token, a distribution over the concepts."""
        if self.total is None or self.count == 0:
            raise RuntimeError("no concept maps were recorded: were the chosen blocks and steps run?")
        mean = self.total / self.count
        return mean.reshape(*mean.shape[:2], *self.grid)
