"""NUMINA as the authors' public code does it (``numina:pipeline=paper``).

Their logit bias, on image-query x noun-token logits of every block, conditional branch only, at
step t of their 50-step clock with delta(t) = (4 - 3 tanh(t - 25)) / 4, applied while
delta(t) > 0.25 in float64 (the first 45 of 50 steps: tanh only reaches 1.0 in float64 at t = 45,
so from about step 28 removed tokens keep -2.5 and added ones +0.2 rather than fading to nothing):
- removed tokens: -10 delta;
- added tokens with no found instance left in the layout: +0.8 delta;
- added tokens beside found instances: set, not added, to delta x the mean logit of the smallest
  found instance's tokens to the noun (over batch, heads, tokens), minus the added token's own
  logit averaged over batch and heads, so that the sum the softmax sees is about that target.

In a render: a reference pass to their reference step's share of the steps reads, at the block
at their reference layer's share of the depth, each head's image self-attention (the head
choice, :class:`HeadSelfAttention`) and each noun's map over the text keys alone
(:class:`NounMap`); ``planner.count_layout_paper`` turns them into a layout; the image is drawn
again with the bias (:func:`bias_edits`: a shared map for removals and circle boosts, and per
block :class:`CopiedInstanceBias` for copies beside found instances).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from scenewright.arrays import to_numpy
from scenewright.backends.base import Backend, BlockRef, PromptEncoding
from scenewright.executor.attention import AttentionBias, Edit, FeatureInjection, Sites, attention_engine
from scenewright.executor.attention.schedules import Site
from scenewright.executor.attention.view import EngineView
from scenewright.executor.composition import conditional_rows, sample_with_edits
from scenewright.executor.sampler import SamplerHook, SamplingSettings, sample
from scenewright.executor.vanilla import RenderResult
from scenewright.planner.count_layout_paper import LABEL_ADDED, LABEL_REMOVED, head_score, paper_layout
from scenewright.planner.plan import Plan, PlanObject

CLOCK_STEPS = 50
CENTER = 25.0
AMPLITUDE = 3.0
OFFSET = 4.0
FLOOR = 0.25
SUPPRESS = 10.0
CIRCLE_BOOST = 0.8


def paper_delta(step: int, num_steps: int = CLOCK_STEPS) -> float:
    """delta(t) on their 50-step clock (our step mapped onto it), 0.0 where they apply none."""
    t = float(step) * CLOCK_STEPS / max(num_steps, 1)
    # Their expression, in their order: the cut at 0.25 depends on the last bit.
    value = (-AMPLITUDE * math.tanh(t - CENTER) + OFFSET) * FLOOR
    return value if value > FLOOR else 0.0


def paper_bias(
    layout: NDArray[np.int64],
    tokens: Sequence[int],
    query: torch.Tensor,
    key: torch.Tensor,
    step: int,
    num_steps: int = CLOCK_STEPS,
) -> torch.Tensor | None:
    """(L_q, L_k) float32 bias for image queries ``query`` (B, heads, L_q, D, row-major tokens of
    ``layout``) and text keys ``key`` (B, heads, L_k, D), or None where delta is off."""
    delta = paper_delta(step, num_steps)
    if delta == 0.0:
        return None
    tok = torch.as_tensor(list(tokens), dtype=torch.long, device=query.device)
    bias = torch.zeros(query.shape[2], key.shape[2], dtype=torch.float32, device=query.device)
    fixed = torch.from_numpy(fixed_bias(layout).reshape(-1)).to(query.device)
    bias[:, tok] += fixed[:, None] * delta
    copied = copied_bias(layout, tokens, query, key, delta)
    if copied is not None:
        added, values = copied
        bias[added[:, None], tok[None, :]] = values
    return bias


def fixed_bias(layout: NDArray[np.int64]) -> NDArray[np.float32]:
    """The part of the bias at delta = 1 that needs no queries or keys, as a map like ``layout``:
    -10 on removed tokens, and +0.8 on added ones when no found instance is left."""
    labels = np.asarray(layout)
    out = np.zeros(labels.shape, dtype=np.float32)
    out[labels == LABEL_REMOVED] = -SUPPRESS
    if not ((labels >= 1) & (labels < LABEL_ADDED)).any():
        out[labels >= LABEL_ADDED] = CIRCLE_BOOST
    return out


def copied_bias(
    layout: NDArray[np.int64],
    tokens: Sequence[int],
    query: torch.Tensor,
    key: torch.Tensor,
    delta: float,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Added tokens beside found instances and their logit offsets to the noun tokens,
    ((n_add,), (n_add, n_tok) float32), from one block's queries and keys; None without copies."""
    flat = torch.from_numpy(np.asarray(layout).reshape(-1)).to(query.device)
    added = (flat >= LABEL_ADDED).nonzero().flatten()
    found = flat[(flat >= 1) & (flat < LABEL_ADDED)]
    if len(added) == 0 or len(found) == 0:
        return None
    tok = torch.as_tensor(list(tokens), dtype=torch.long, device=query.device)
    labels, sizes = torch.unique(found, return_counts=True)
    reference = (flat == labels[int(sizes.argmin())]).nonzero().flatten()
    scale = query.shape[-1] ** -0.5
    tok_k = key[:, :, tok]
    with torch.no_grad():
        target = (query[:, :, reference] @ tok_k.transpose(-2, -1) * scale).mean().item() * delta
        own = (query[:, :, added] @ tok_k.transpose(-2, -1) * scale).mean(dim=(0, 1))
    return added, (target - own).float()


def self_attention_maps(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """(heads, N, N) image self-attention probabilities of batch row 0 from (B, heads, N, D)."""
    scale = query.shape[-1] ** -0.5
    return torch.softmax(query[0].float() @ key[0].float().transpose(-2, -1) * scale, dim=-1)


def cross_attention_map(query: torch.Tensor, key: torch.Tensor, tokens: Sequence[int]) -> torch.Tensor:
    """(N,) the noun's cross-attention: softmax over the text keys alone, averaged over the noun's
    tokens and then over heads (batch row 0; (B, heads, L, D) inputs)."""
    scale = query.shape[-1] ** -0.5
    probs = torch.softmax(query[0].float() @ key[0].float().transpose(-2, -1) * scale, dim=-1)
    return probs[:, :, list(tokens)].mean(dim=2).mean(dim=0)


# Where their pipeline reads the layout: step 20 of 50, layer 15 of Wan2.1-1.3B's 30 blocks.
REFERENCE_STEP = 20
REFERENCE_LAYER = 15
REFERENCE_DEPTH = 30


def reference_step(num_steps: int) -> int:
    """Their reference step (20 of 50) at the same share of our steps."""
    return max(0, min(num_steps - 1, round(REFERENCE_STEP * num_steps / CLOCK_STEPS)))


def reference_block(backend: Backend) -> BlockRef:
    """The block at their reference layer's share of the depth (15 of 30: the middle)."""
    blocks = backend.blocks()
    return blocks[len(blocks) * REFERENCE_LAYER // REFERENCE_DEPTH]


def one_site(site: Site, steps: tuple[int, int] | None = None) -> Sites:
    """Sites holding only ``site`` (every other kind explicitly empty)."""
    kinds: dict[str, list[int]] = {"double": [], "single": [], "joint": []}
    kinds[site[0]] = [site[1]]
    return Sites.make(**kinds, steps=steps)


def _image_tokens(tensor: torch.Tensor, rows: Sequence[int], text_len: int) -> torch.Tensor:
    """(B', heads, N, D) image queries or keys of ``rows`` from canonical (B, S, H, D)."""
    return tensor[list(rows), text_len:].transpose(1, 2)


def _text_key(key: torch.Tensor, rows: Sequence[int], text_len: int) -> torch.Tensor:
    """(B', heads, T, D) text keys of ``rows`` from canonical (B, S, H, D)."""
    return key[list(rows), :text_len].transpose(1, 2)


@dataclass
class HeadSelfAttention(Edit):
    """Their head choice, read where it is active (one block, one step, one batch row): each
    head's image self-attention (softmax over image keys alone), scored by ``head_score``; keeps
    every score and the winning head's (N, N) map. Never changes the image."""

    row: int = 0
    scores: list[float] = field(default_factory=list, init=False)
    head: int = field(default=-1, init=False)
    attention: NDArray[np.float32] | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        self.scores, self.head, self.attention = [], -1, None

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
        height, width = engine.grid
        q, k = _image_tokens(query, [self.row], text_len), _image_tokens(key, [self.row], text_len)
        self.reset()
        for h in range(q.shape[1]):  # one head at a time: N x N maps are large
            attention = to_numpy(self_attention_maps(q[:, h : h + 1], k[:, h : h + 1])[0])
            self.scores.append(head_score(attention.astype(np.float64), height, width))
            if self.head < 0 or self.scores[-1] > self.scores[self.head]:
                self.head, self.attention = h, attention


@dataclass
class NounMap(Edit):
    """Their noun map, read where it is active: the image queries' softmax over the text keys
    alone, averaged over ``tokens`` and then over heads, as a (rows, cols) map of one batch row."""

    tokens: Sequence[int] = ()
    row: int = 0
    map: NDArray[np.float32] | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        self.map = None

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
        q, k = _image_tokens(query, [self.row], text_len), _text_key(key, [self.row], text_len)
        self.map = to_numpy(cross_attention_map(q, k, self.tokens)).reshape(engine.grid)


def _on(step: int, num_steps: int) -> float:
    return 1.0 if paper_delta(step, num_steps) > 0.0 else 0.0


@dataclass
class CopiedInstanceBias(AttentionBias):
    """One block's bias for added instances beside found ones (see ``copied_bias``): it depends
    on that block's queries and keys at that step, so each block has its own edit, filled by
    :class:`BlockQueryKeys` just before the block's attention; the engine reads it at strength 1
    (``schedule``: on while delta is). ``copies`` holds (layout, noun tokens) per counted noun."""

    copies: Sequence[tuple[NDArray[np.int64], Sequence[int]]] = ()
    buffer: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.schedule = _on

    def reset(self) -> None:
        self.buffer = None

    def placed(self, grid: tuple[int, int], text_len: int, batch: int, device: torch.device) -> torch.Tensor:
        if self.buffer is None:
            self.buffer = torch.zeros(batch, grid[0] * grid[1], text_len, device=device)
        return self.buffer

    def update(
        self, query: torch.Tensor, key: torch.Tensor, text_len: int, step: int, num_steps: int
    ) -> None:
        """Write this step's offsets from canonical (B, S, H, D) ``query`` and ``key``."""
        batch, seq = query.shape[:2]
        if self.buffer is None:
            self.buffer = torch.zeros(batch, seq - text_len, text_len, device=query.device)
        rows = list(range(batch)) if self.rows is None else list(self.rows)
        q, k = _image_tokens(query, rows, text_len), _text_key(key, rows, text_len)
        delta = paper_delta(step, num_steps)
        for layout, tokens in self.copies:
            copied = copied_bias(layout, tokens, q, k, delta)
            if copied is None:
                continue
            added, values = copied
            tok = torch.as_tensor(list(tokens), dtype=torch.long, device=query.device)
            for row in rows:
                self.buffer[row, added[:, None], tok[None, :]] = values


@dataclass
class BlockQueryKeys(FeatureInjection):
    """Hands each block's queries and keys to its :class:`CopiedInstanceBias` before the block
    attends: the engine's one hook that sees a block's q/k ahead of its attention is a feature
    injection's ``rewrite``; this one records nothing and rewrites nothing."""

    biases: dict[Site, CopiedInstanceBias] = field(default_factory=dict)

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return site in self.biases and paper_delta(step, num_steps) > 0.0

    def rewrite(
        self, engine: EngineView, site: Site, tensors: dict[str, torch.Tensor], text_len: int
    ) -> None:
        self.biases[site].update(tensors["q"], tensors["k"], text_len, engine.step, engine.num_steps)


def bias_edits(
    backend: Backend, layouts: Sequence[tuple[NDArray[np.int64], Sequence[int]]], rows: tuple[int, ...]
) -> list[Edit]:
    """Their bias as edits for every block: one shared map (removed tokens, circle boosts) scaled
    by delta, and per-block edits for copies beside found instances; empty when nothing changes."""
    maps: dict[int, torch.Tensor] = {}
    for layout, tokens in layouts:
        fixed = torch.from_numpy(fixed_bias(layout))
        if fixed.any():
            for token in tokens:
                maps[token] = maps.get(token, torch.zeros(fixed.shape)) + fixed
    edits: list[Edit] = [AttentionBias(maps=maps, schedule=paper_delta, rows=rows)] if maps else []
    copies = [(layout, tokens) for layout, tokens in layouts if _has_copies(layout)]
    if copies:
        sites = [(block.kind, block.index) for block in backend.blocks()]
        per_block = {
            site: CopiedInstanceBias(copies=copies, rows=rows, sites=one_site(site)) for site in sites
        }
        edits += [*per_block.values(), BlockQueryKeys(biases=per_block)]
    return edits


def _has_copies(layout: NDArray[np.int64]) -> bool:
    labels = np.asarray(layout)
    return bool((labels >= LABEL_ADDED).any() and ((labels >= 1) & (labels < LABEL_ADDED)).any())


def render_paper(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    encoding: PromptEncoding,
    targets: Sequence[tuple[int, PlanObject, list[int]]],
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
) -> RenderResult:
    """``numina:pipeline=paper``: their reference read, head choice, count layout and bias.

    ``targets`` are (object index, object, the noun's token positions). The reference pass runs
    to their reference step's share of the steps and reads the chosen head's self-attention and
    each noun's map at the reference block (conditional row); the image is then drawn again from
    the same noise with the bias on the nouns' tokens, or, when every count is already right,
    the reference pass is finished (the same image as drawing it again without a bias).
    """
    read_step = reference_step(settings.steps)
    block = reference_block(backend)
    site = (block.kind, block.index)
    rows = conditional_rows(backend, settings)
    sites = one_site(site, steps=(read_step, read_step + 1))
    heads = HeadSelfAttention(row=rows[0], sites=sites)
    nouns = [NounMap(tokens=tokens, row=rows[0], sites=sites) for _, _, tokens in targets]
    with attention_engine(backend, [heads, *nouns]) as engine:
        reference = sample(
            backend, encoding, settings, hooks=[engine, *hooks], progress=progress, decode=False,
            max_steps=read_step + 1,
        )  # fmt: skip
    if heads.attention is None or any(noun.map is None for noun in nouns):
        raise RuntimeError("the reference pass did not reach the reference block")

    layouts: list[tuple[NDArray[np.int64], Sequence[int]]] = []
    report_layouts: dict[str, Any] = {}
    for (i, obj, tokens), noun in zip(targets, nouns, strict=True):
        assert noun.map is not None
        layout, found = paper_layout(heads.attention, noun.map, obj.count)
        layouts.append((layout, tokens))
        report_layouts[f"{i}:{obj.name}"] = {
            "found": found,
            "added": max(0, obj.count - found),
            "removed": max(0, found - obj.count),
            # Copies may land on found instances or on each other (their placement cost).
            "instances_left": len(np.unique(layout[layout > 0])),
        }
    bias = bias_edits(backend, layouts, rows)
    if bias or edits:
        result = sample_with_edits(
            backend, encoding, settings, [*bias, *edits], hooks=hooks, progress=progress
        )
    else:
        result = sample(
            backend, encoding, settings, hooks=hooks, progress=progress, latents=reference.latents,
            start_step=read_step + 1,
        )  # fmt: skip
    report = {
        "pipeline": "paper",
        "reference_steps": read_step + 1,
        "continued": not bias and not edits,
        "reference_block": f"{block.kind}{block.index}",
        "head": heads.head,
        "layouts": report_layouts,
        "copied_bias": any(isinstance(e, CopiedInstanceBias) for e in bias),
    }
    artifacts = {"layouts": [layout for layout, _ in layouts], "head_scores": list(heads.scores)}
    return RenderResult(
        image=backend.to_pil(result.images)[0], plan=plan, settings=settings, strategy="numina",
        sample=result, report=report, artifacts=artifacts,
    )  # fmt: skip
