"""What a render asks of the transformer, counted, and the work that is on the published model.

Seconds measured on one machine say little about another, and this one has no GPU. The
transformer calls a strategy makes, with their batch and sequence lengths, are the same on every
device, and on a GPU at FLUX.1 or SD3.5 size the transformer's arithmetic is most of the time
(the plain pipeline's 28 steps at 1024 px ran at about 410 TFLOP/s on an H200). So ``bench models``
counts every call a case makes (:func:`work_meter`, a forward pre-hook on the transformer) and
converts the counts into floating-point operations of the published model
(:func:`published_flops`), at any scale: with ``--scale narrow`` the real token counts run
through a narrow model on a CPU, and the ratio of a strategy's work to the pipeline's predicts
its time ratio where the GPU is busy with matrix products.

The model of the work (multiply-adds counted twice; what it leaves out is small at 1024 px):

- every token in every block goes through 12 d^2 weights (FLUX double blocks and SD3 joint
  blocks: q, k, v, out and a 4x MLP in the token's own stream; FLUX single blocks: q, k, v, the
  4x MLP in and the 5d -> d out), so 24 d^2 operations a token a block;
- attention costs 4 d operations for each (query, key) pair a block (scores and weighted values),
  every pair of the call's sequence counted: a masked pass that skips pairs (regional's
  region kernels) is counted as dense, so its work is an upper bound;
- an SD3.5 MMDiT-X block adds a second attention over the image tokens alone (8 d^2 a token,
  4 d a pair);
- left out: embedders, the final layer, the modulation vectors (per image, not per token), the
  observers' own readings (one more attention over the observed blocks' keys, chunked), text
  encoders and the VAE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scenewright.bench.geometry import ModelGeometry, geometry


@dataclass
class TransformerWork:
    """The transformer calls of one render, summed."""

    calls: int = 0
    token_rows: int = 0  # over calls: batch x (text + image tokens)
    attention_pairs: int = 0  # over calls: batch x (text + image tokens)^2
    image_rows: int = 0  # over calls: batch x image tokens
    image_pairs: int = 0  # over calls: batch x image tokens^2

    def add(self, batch: int, image_tokens: int, text_tokens: int) -> None:
        sequence = image_tokens + text_tokens
        self.calls += 1
        self.token_rows += batch * sequence
        self.attention_pairs += batch * sequence * sequence
        self.image_rows += batch * image_tokens
        self.image_pairs += batch * image_tokens * image_tokens


def _image_tokens(hidden_states: Any, patch_size: int) -> int:
    """FLUX passes packed tokens (B, N, C); SD3 passes the latent (B, C, H, W) and patchifies it."""
    if hidden_states.ndim == 4:
        return int(hidden_states.shape[2] // patch_size) * int(hidden_states.shape[3] // patch_size)
    return int(hidden_states.shape[1])


@contextmanager
def work_meter(transformer: Any) -> Iterator[TransformerWork]:
    """Count every call of ``transformer`` inside the block (a hook, removed on the way out)."""
    work = TransformerWork()
    patch_size = int(getattr(getattr(transformer, "config", None), "patch_size", 1) or 1)

    def count(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        text = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        if hidden is None:
            return
        text_tokens = int(text.shape[1]) if text is not None else 0
        work.add(int(hidden.shape[0]), _image_tokens(hidden, patch_size), text_tokens)

    handle = transformer.register_forward_pre_hook(count, with_kwargs=True)
    try:
        yield work
    finally:
        handle.remove()


def published_flops(geo: ModelGeometry, work: TransformerWork) -> float:
    """Floating-point operations ``work``'s calls take on ``geo``'s published transformer (see the
    module's docstring for what is counted)."""
    published = geometry(geo.name, "full")
    width = published.hidden_size
    blocks = published.blocks
    depth = blocks.get("double", 0) + blocks.get("single", 0) + blocks.get("joint", 0)
    second_attention = blocks.get("dual_attention", 0)
    flops = depth * (24.0 * width**2 * work.token_rows + 4.0 * width * work.attention_pairs)
    flops += second_attention * (8.0 * width**2 * work.image_rows + 4.0 * width * work.image_pairs)
    return flops
