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
  4x MLP in and the 5d -> d out), so 24 d^2 operations a token a block (FLUX.2: 13 d^2, its
  SwiGLU MLP of ratio 3 taking 9, so 26);
- attention costs 4 d operations for each (query, key) pair a block (scores and weighted values).
  The pairs are those the kernels computed where our attention engine ran the block (its
  kernels report them, :mod:`scenewright.executor.attention.counting`: a regional block's
  region pass over a partition computes each group's pairs only, plus its base pass), and the
  call's whole sequence squared elsewhere (diffusers' own processors, unedited blocks). Per call
  they are averaged over the blocks, so a model of fewer blocks stands for the published one
  wherever an edit acts on every block alike (as regional's default does);
- an SD3.5 MMDiT-X block adds a second attention over the image tokens alone (8 d^2 a token,
  4 d a pair);
- a Z-Image call is a batch of rows ``[image; caption]``, each part padded to a multiple of 32;
  every token also goes through its modality's refiner layers (24 d^2 a token, and 4 d for each
  image-image pair; the caption's own pairs, under 2% of the image's at 1024 px, left out);
- left out: embedders, the final layer, the modulation vectors (per image, not per token), the
  observers' own readings (one more attention over the observed blocks' keys, chunked), text
  encoders and the VAE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from scenewright.bench.geometry import ModelGeometry, geometry
from scenewright.executor.attention.counting import PairTally, tallying


@dataclass
class TransformerWork:
    """The transformer calls of one render, summed.

    Pair counts are a block's: per call, the average over the model's blocks of that kind.
    """

    calls: int = 0
    token_rows: int = 0  # over calls: batch x (text + image tokens), and rows blocks carried beyond them
    attention_pairs: float = 0  # over calls: pairs computed a joint-attention block
    image_rows: int = 0  # over calls: batch x image tokens
    image_pairs: float = 0  # over calls: pairs computed an image-only (SD3.5 MMDiT-X) block
    dense_attention_pairs: int = 0  # over calls: batch x (text + image tokens)^2
    dense_image_pairs: int = 0  # over calls: batch x image tokens^2

    def add(
        self,
        batch: int,
        image_tokens: int,
        text_tokens: int,
        attention_pairs: float | None = None,
        image_pairs: float | None = None,
        extra_rows: float = 0.0,
    ) -> None:
        """One call; pairs a block default to dense (every pair of the sequence); ``extra_rows``
        are rows a block ran beyond the input (averaged over the blocks)."""
        sequence = image_tokens + text_tokens
        dense, dense_image = batch * sequence * sequence, batch * image_tokens * image_tokens
        self.calls += 1
        self.token_rows += batch * sequence + round(extra_rows)
        self.image_rows += batch * image_tokens
        self.dense_attention_pairs += dense
        self.dense_image_pairs += dense_image
        self.attention_pairs += dense if attention_pairs is None else attention_pairs
        self.image_pairs += dense_image if image_pairs is None else image_pairs


def _image_tokens(hidden_states: Any, patch_size: int) -> int:
    """FLUX passes packed tokens (B, N, C); SD3 passes the latent (B, C, H, W) and patchifies it."""
    if hidden_states.ndim == 4:
        return int(hidden_states.shape[2] // patch_size) * int(hidden_states.shape[3] // patch_size)
    return int(hidden_states.shape[1])


def _block_counts(transformer: Any) -> tuple[int, int]:
    """Joint-attention blocks, and blocks with SD3.5's image-only second attention."""
    joint = list(getattr(transformer, "transformer_blocks", ())) or list(getattr(transformer, "layers", ()))
    single = list(getattr(transformer, "single_transformer_blocks", ()))
    dual = sum(1 for block in joint if getattr(block, "attn2", None) is not None)
    return len(joint) + len(single), dual


def _z_image_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, int, int] | None:
    """Batch, image and caption tokens (each padded to 32, as the model runs them) of a Z-Image
    call (lists of (C, 1, H, W) latents and (T, D) captions, patch 2), or None for another model."""
    images = kwargs.get("x", args[0] if args else None)
    captions = kwargs.get("cap_feats", args[2] if len(args) > 2 else None)
    if not isinstance(images, list) or not isinstance(captions, list):
        return None
    image = max(int(x.shape[-2] // 2) * int(x.shape[-1] // 2) for x in images)
    text = max(int(c.shape[0]) for c in captions)
    return len(images), image + (-image) % 32, text + (-text) % 32


def _per_block(recorded_pairs: int, recorded: int, blocks: int, dense: int) -> float:
    """Pairs a block for one call: the engine's count where it ran, dense in the other blocks."""
    if recorded >= blocks:
        return recorded_pairs / recorded
    return (recorded_pairs + (blocks - recorded) * dense) / blocks


@contextmanager
def work_meter(transformer: Any) -> Iterator[TransformerWork]:
    """Count every call of ``transformer`` inside the block (hooks, removed on the way out)."""
    work = TransformerWork()
    patch_size = int(getattr(getattr(transformer, "config", None), "patch_size", 1) or 1)
    joint_blocks, image_blocks = _block_counts(transformer)
    pending: list[tuple[int, int, int, PairTally]] = []

    def before(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        z_image = _z_image_call(args, kwargs)
        if z_image is not None:
            pending.append((*z_image, replace(tally)))
            return
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        text = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        if hidden is None:
            return
        text_tokens = int(text.shape[1]) if text is not None else 0
        pending.append((int(hidden.shape[0]), _image_tokens(hidden, patch_size), text_tokens, replace(tally)))

    def after(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not pending:
            return
        batch, image, text, start = pending.pop()
        sequence = image + text
        joint = _per_block(
            tally.joint_pairs - start.joint_pairs,
            tally.joint_passes - start.joint_passes,
            joint_blocks,
            batch * sequence * sequence,
        )
        second = _per_block(
            tally.image_pairs - start.image_pairs,
            tally.image_passes - start.image_passes,
            max(image_blocks, 1),
            batch * image * image,
        )
        extra = (tally.extra_rows - start.extra_rows) / max(joint_blocks, 1)
        work.add(batch, image, text, joint, second, extra)

    with tallying() as tally:
        handles = [
            transformer.register_forward_pre_hook(before, with_kwargs=True),
            transformer.register_forward_hook(after, with_kwargs=True),
        ]
        try:
            yield work
        finally:
            for handle in handles:
                handle.remove()


def _token_weights(geo: ModelGeometry) -> float:
    """Operations a token a block, in d^2: 24 (see above), or FLUX.2's 26 (q, k, v, out and a
    SwiGLU MLP of ratio 3: 6d in, 3d out, in double and fused single blocks alike)."""
    return 26.0 if geo.family == "flux2" else 24.0


def published_flops(geo: ModelGeometry, work: TransformerWork, dense: bool = False) -> float:
    """Floating-point operations ``work``'s calls take on ``geo``'s published transformer (see the
    module's docstring for what is counted); ``dense`` prices every pair of every sequence, the
    upper bound a masked kernel stays under."""
    published = geometry(geo.name, "full")
    width = published.hidden_size
    blocks = published.blocks
    depth = blocks.get("double", 0) + blocks.get("single", 0) + blocks.get("joint", 0)
    second_attention = blocks.get("dual_attention", 0)
    pairs = work.dense_attention_pairs if dense else work.attention_pairs
    image_pairs = work.dense_image_pairs if dense else work.image_pairs
    flops = depth * (_token_weights(published) * width**2 * work.token_rows + 4.0 * width * pairs)
    flops += second_attention * (8.0 * width**2 * work.image_rows + 4.0 * width * image_pairs)
    refiners = blocks.get("refiner", 0)  # Z-Image: per-modality layers before the shared ones
    flops += refiners * (24.0 * width**2 * work.token_rows + 4.0 * width * work.dense_image_pairs)
    return flops
