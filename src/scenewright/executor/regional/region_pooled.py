"""Each box's own pooled vector: per-token adaLN modulation on FLUX-class transformers.

An MMDiT conditions every block twice: through the text tokens of the joint attention, and
through a pooled text vector that sets each block's adaLN shift, scale and gate for *every*
token of the sample. Regional prompting binds the text tokens to their boxes but leaves the pooled
vector global, so a box still hears every object the prompt names. On the toy model this is
how a ring's box comes to draw the heart named beside it: rendered alone, "a yellow ring" with
the pooled vector of "a yellow heart" draws a heart in 5 of 6 seeds (docs/benchmarks.md).

:func:`region_pooled` gives each image token the modulation of its own box's prompt (the
smallest box where boxes overlap; the scene's prompt outside every box) on the conditional rows
of the batch. diffusers' FLUX blocks take one modulation per sample, so forward hooks on their
norm, attention, feed-forward and output layers apply it per token instead: the norm layers hand
the block neutral values (gate 1, shift 0, scale 0) and the hooks put each token's own in. With
every box given the scene's pooled vector the model's output is unchanged (tested).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention.masks import Box, box_to_tokens

POOLED_BLOCKS = ("all", "single")


def _child(module: nn.Module, name: str) -> nn.Module:
    """A named submodule of a diffusers block, typed (the blocks' attributes are untyped)."""
    child = getattr(module, name)
    assert isinstance(child, nn.Module), f"{type(module).__name__}.{name} is not a module"
    return child


def token_regions(boxes: Sequence[Box], grid: tuple[int, int]) -> torch.Tensor:
    """(rows * cols,) index of each image token's box, 1-based; 0 outside every box.

    Smaller boxes are laid last, so where boxes overlap a token belongs to the smaller one (as
    the box noise does), and a small object is not swallowed by a large neighbour."""
    index = torch.zeros(grid, dtype=torch.long)
    order = sorted(
        range(len(boxes)), key=lambda i: -(boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
    )
    for i in order:
        index[box_to_tokens(boxes[i], grid)] = i + 1
    return index.flatten()


def supports_region_pooled(backend: Backend) -> bool:
    """FLUX-class transformers (double and single blocks, a pooled projection) only: not Chroma,
    whose blocks are modulated from the timestep alone."""
    transformer = backend.transformer
    pooled = getattr(getattr(transformer, "config", None), "pooled_projection_dim", None)
    return bool(pooled) and all(
        hasattr(transformer, name) for name in ("single_transformer_blocks", "time_text_embed", "norm_out")
    )


@dataclass
class _Modulation:
    """The per-row, per-region time-text embeddings of the current forward pass."""

    conditional_pooled: torch.Tensor  # (P,): rows whose pooled vector equals it get the boxes'
    region_pooled: torch.Tensor  # (R, P): one per box
    image_region: torch.Tensor  # (N,) 0 = the row's own embedding, r = box r
    text_region: torch.Tensor  # (T,) the same for the text tokens
    embeddings: torch.Tensor | None = field(default=None, init=False)  # (B, R + 1, D)
    stash: dict[tuple[int, str], dict[str, torch.Tensor]] = field(default_factory=dict, init=False)

    def per_region(self, module: nn.Module, chunks: int) -> tuple[torch.Tensor, ...]:
        """``module``'s modulation (its linear of the SiLU'd embedding) for every row and region,
        split into its ``chunks`` (shift, scale, gate, ...), each (B, R + 1, D). Kept per region
        and spread to the tokens only where applied (:func:`_at`), so a block's transient memory
        is one (B, tokens, D) tensor at a time, not six."""
        assert self.embeddings is not None, "the time-text embedding hook has not run"
        values = _child(module, "linear")(_child(module, "silu")(self.embeddings))
        return values.chunk(chunks, dim=-1)


def _at(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, len(index), D): each token's row of the per-region ``values``."""
    return values[:, index.to(values.device)]


def _embedding_hook(state: _Modulation) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        # FLUX calls time_text_embed(timestep, pooled) or (timestep, guidance, pooled).
        pooled = args[-1]
        wanted = state.conditional_pooled.to(pooled.device).float()
        given = state.region_pooled.to(device=pooled.device, dtype=pooled.dtype)
        rows = []
        for b in range(output.shape[0]):
            own = output[b : b + 1]
            if torch.allclose(pooled[b].float(), wanted):
                row_args = [a[b : b + 1].expand(len(given), *a.shape[1:]) for a in args[:-1]]
                rows.append(torch.cat([own, module.forward(*row_args, given)]))  # forward(): no hooks
            else:
                rows.append(own.expand(len(given) + 1, -1))
        state.embeddings = torch.stack(rows)

    return hook


def _ours(tokens: torch.Tensor, index: torch.Tensor) -> bool:
    """Whether a layer's input or output is the stream the index covers. Other code may run the
    same layers on other tokens (ConceptAttention carries its concepts through the text stream's
    layers), and those calls are left alone."""
    return tokens.dim() == 3 and tokens.shape[1] == len(index)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """adaLN per token: ``x * (1 + scale) + shift``, with per-region ``shift`` and ``scale``."""
    return x * (1 + _at(scale, index)) + _at(shift, index)


def _install_stream(
    state: _Modulation,
    key: tuple[int, str],
    index: torch.Tensor,
    norm1: nn.Module,
    norm2: nn.Module,
    ff: nn.Module,
) -> list[Any]:
    """One stream of a double block: ``norm1`` hands the block neutral values (gate 1, shift and
    scale 0), then each token's own are applied to its attention output, ``norm2`` and ``ff``."""

    def first(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if not _ours(args[0], index):
            return None
        shift, scale, gate, shift_mlp, scale_mlp, gate_mlp = state.per_region(module, 6)
        state.stash[key] = {
            "gate": gate,
            "shift_mlp": shift_mlp,
            "scale_mlp": scale_mlp,
            "gate_mlp": gate_mlp,
        }
        ones, zeros = torch.ones_like(output[1]), torch.zeros_like(output[1])
        return _modulate(_child(module, "norm")(args[0]), shift, scale, index), ones, zeros, zeros, ones

    def second(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if key not in state.stash or not _ours(output, index):
            return None
        saved = state.stash[key]
        return _modulate(output, saved["shift_mlp"], saved["scale_mlp"], index)

    def feed_forward(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if key not in state.stash or not _ours(output, index):
            return None
        return _at(state.stash.pop(key)["gate_mlp"], index) * output

    return [
        norm1.register_forward_hook(first, with_kwargs=True),
        norm2.register_forward_hook(second),
        ff.register_forward_hook(feed_forward),
    ]


def _install_double(block: nn.Module, state: _Modulation) -> list[Any]:
    """A double block: the image stream always, the text stream where a text token has a box."""
    image_key, text_key = (id(block), "image"), (id(block), "text")
    with_text = bool(state.text_region.any())

    def attn(module: nn.Module, args: Any, output: Any) -> Any:
        if not isinstance(output, tuple) or len(output) < 2 or image_key not in state.stash:
            return None
        image, text, *rest = output
        if not _ours(image, state.image_region):
            return None
        image = _at(state.stash[image_key]["gate"], state.image_region) * image
        if with_text and text_key in state.stash and _ours(text, state.text_region):
            text = _at(state.stash[text_key]["gate"], state.text_region) * text
        return (image, text, *rest)

    handles = _install_stream(
        state,
        image_key,
        state.image_region,
        _child(block, "norm1"),
        _child(block, "norm2"),
        _child(block, "ff"),
    )
    if with_text:
        handles += _install_stream(
            state,
            text_key,
            state.text_region,
            _child(block, "norm1_context"),
            _child(block, "norm2_context"),
            _child(block, "ff_context"),
        )
    return [*handles, _child(block, "attn").register_forward_hook(attn)]


def _install_single(block: nn.Module, state: _Modulation) -> list[Any]:
    """A single block over [text; image]: norm neutralised, the gate applied after proj_out."""
    key = (id(block), "joint")

    def norm(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        text_tokens = args[0].shape[1] - len(state.image_region)
        if text_tokens < 0:
            return None
        text = state.text_region if len(state.text_region) else state.image_region.new_zeros(text_tokens)
        if len(state.text_region) and text_tokens == len(state.text_region) + len(state.image_region):
            # The base prompt's own image stream carried after the text (regional base_stream=separate):
            # the base stream is the scene's, so it keeps the row's own modulation.
            text = torch.cat([text, state.image_region.new_zeros(len(state.image_region))])
        if text_tokens != len(text):
            return None
        index = torch.cat([text, state.image_region])
        shift, scale, gate = state.per_region(module, 3)
        state.stash[key] = {"gate": gate, "index": index}
        return _modulate(_child(module, "norm")(args[0]), shift, scale, index), torch.ones_like(output[1])

    def proj_out(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if key not in state.stash or not _ours(output, state.stash[key]["index"]):
            return None
        saved = state.stash.pop(key)
        return _at(saved["gate"], saved["index"]) * output

    return [
        _child(block, "norm").register_forward_hook(norm, with_kwargs=True),
        _child(block, "proj_out").register_forward_hook(proj_out),
    ]


def _install_output(norm_out: nn.Module, state: _Modulation) -> Any:
    """The final AdaLayerNormContinuous (image tokens only): scale first, then shift."""

    def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        if not _ours(args[0], state.image_region):
            return None
        scale, shift = state.per_region(module, 2)
        normed = _child(module, "norm")(args[0])
        return _modulate(normed, shift.to(output.dtype), scale.to(output.dtype), state.image_region)

    return norm_out.register_forward_hook(hook)


@contextmanager
def region_pooled(
    backend: Backend,
    conditional_pooled: torch.Tensor,
    region_pooled: torch.Tensor,
    image_region: torch.Tensor,
    text_region: torch.Tensor | None = None,
    blocks: str = "all",
) -> Iterator[None]:
    """While open, the tokens of box r are modulated by ``region_pooled[r - 1]`` on the rows
    whose pooled vector is ``conditional_pooled`` (the conditional rows of a CFG batch); other
    tokens and rows keep their own. ``image_region`` is :func:`token_regions`' index, and
    ``text_region`` (default: none) gives each text token's box the same way. ``blocks``: "all",
    or "single" for the single-stream blocks and the output layer only (the double blocks keep
    the scene's modulation: on the toy model they place the objects, docs/benchmarks.md)."""
    if blocks not in POOLED_BLOCKS:
        raise InvalidInputError("region_pooled.blocks", f"unknown blocks {blocks!r}", "use all or single")
    if not supports_region_pooled(backend):
        raise InvalidInputError(
            "region_pooled",
            f"per-box pooled vectors need a FLUX-class transformer, not {type(backend.transformer).__name__}",
            "leave region_pooled off on this model",
        )
    transformer = backend.transformer
    text = text_region if text_region is not None else torch.zeros(0, dtype=torch.long)
    state = _Modulation(conditional_pooled.reshape(-1), region_pooled, image_region, text)
    handles = [_child(transformer, "time_text_embed").register_forward_hook(_embedding_hook(state))]
    try:
        if blocks == "all":
            for block in transformer.transformer_blocks:
                handles += _install_double(block, state)
        for block in transformer.single_transformer_blocks:
            handles += _install_single(block, state)
        handles.append(_install_output(_child(transformer, "norm_out"), state))
        yield
    finally:
        for handle in handles:
            handle.remove()
        state.stash.clear()
