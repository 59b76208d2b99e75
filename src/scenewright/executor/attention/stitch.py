"""Stitch's pieces at the attention level: the cut-out head, chosen while sampling, and latent
paste hooks.

Stitch generates each object in its own masked pass for the first S steps, then pastes the tokens
each object occupies into the background latent. Which tokens belong to an object is read from
the text-to-image attention of one (block, head); :class:`HeadSelection` picks it as the blocks
run, keeping only the best candidate so far. The paste is a :class:`SamplerHook` so that it
composes with any attention edits; the object latents come from a callable so they can be read
from a parallel run at the moment of pasting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from scenewright.backends.base import Backend
from scenewright.executor.attention.edits import Edit
from scenewright.executor.attention.reading import READ_BUDGET_BYTES, text_mass, token_weights
from scenewright.executor.attention.schedules import Site, Sites
from scenewright.executor.attention.view import EngineView
from scenewright.executor.sampler import SamplerHook, StepContext

# A head whose correlation is undefined in every box (a constant map) scores below any real one.
UNDEFINED_SCORE = -2.0


def head_scores(candidates: torch.Tensor, references: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(H,) agreement of each head with the references inside the boxes.

    ``candidates`` is (G, H, N) (G instances, H heads, N image tokens), ``references`` (G, N) and
    ``boxes`` (G, N) bool. A head's score is its mean Pearson correlation with the reference over
    the instances where it is defined; ``UNDEFINED_SCORE`` where it is defined in none.
    """
    heads = candidates.shape[1]
    total = torch.zeros(heads, device=candidates.device)
    defined = torch.zeros(heads, device=candidates.device)
    for cand, ref, box in zip(candidates, references, boxes, strict=True):
        x = cand[:, box].float()
        y = ref[box].float()
        x = x - x.mean(dim=1, keepdim=True)
        y = y - y.mean()
        norm = x.norm(dim=1) * y.norm()
        ok = norm > 1e-12
        total += torch.where(ok, (x * y).sum(dim=1) / norm.clamp_min(1e-12), 0.0)
        defined += ok.float()
    return torch.where(defined > 0, total / defined.clamp_min(1), UNDEFINED_SCORE)


@dataclass
class HeadSelection(Edit):
    """Stitch's cut-out head: the (block, head) whose maps agree best, inside the boxes, with a
    reference map of each instance; chosen as the candidate blocks (``sites``) run.

    ``groups`` are the canonical text positions of each instance's prompt (an instance's map is
    the mean over them), ``boxes`` its (rows, cols) token box, ``row`` the conditional batch row.
    ``reference`` returns the (G, N) reference maps (ConceptAttention's, on FLUX-class models);
    without it the reference is the mean over heads of the ``reference_sites`` blocks, which
    must run before the candidates. The state is the reference sum and the best candidate's
    maps, (G, N) each: it does not grow with the blocks or steps observed.
    """

    groups: Sequence[Sequence[int]] = ()
    boxes: Sequence[torch.Tensor] = ()
    row: int = 0
    reference: Callable[[], torch.Tensor | None] | None = None
    reference_sites: Sites = field(default_factory=Sites)
    budget: int = READ_BUDGET_BYTES
    reference_total: torch.Tensor | None = field(default=None, init=False, repr=False)
    reference_count: int = field(default=0, init=False)
    best_score: float = field(default=-math.inf, init=False)
    best: tuple[Site, int] | None = field(default=None, init=False)
    best_maps: torch.Tensor | None = field(default=None, init=False, repr=False)
    _boxes_on: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)
    chosen_by: str = field(default="", init=False)
    grid: tuple[int, int] = field(default=(0, 0), init=False)

    def reset(self) -> None:
        self.reference_total, self.reference_count = None, 0
        self.best_score, self.best, self.best_maps = -math.inf, None, None

    def _reads_reference(self, site: Site, step: int) -> bool:
        return self.reference is None and self.reference_sites.active(site, step)

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return self.sites.active(site, step) or self._reads_reference(site, step)

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
        """Per-head maps of every instance at this site; fold them into the reference and/or
        score them against it, keeping the best head's maps."""
        batch, seq, heads, _ = query.shape
        n_image = seq - text_len
        gamma, bias = engine.modifiers(site, batch, text_len, n_image, query.device)
        rows = slice(self.row, self.row + 1)
        query, key = query[rows], key[rows]
        gamma = None if gamma is None else gamma[rows]
        bias = None if bias is None else bias[rows]
        groups = [list(g) for g in self.groups]
        per_head = torch.zeros(len(groups), heads, n_image, device=query.device)
        for read in engine.read_passes(site, text_len, n_image, query.device):
            weights = token_weights(read, groups, mean=True)
            if weights is None:
                continue
            for start, stop, mass in text_mass(query, key, text_len, read, weights, gamma, bias, self.budget):
                per_head[:, :, start:stop] += read.weight * mass[0].permute(2, 0, 1)
        self.grid = engine.grid
        if self._reads_reference(site, engine.step):
            mean = per_head.mean(dim=1)
            self.reference_total = mean if self.reference_total is None else self.reference_total + mean
            self.reference_count += 1
        if not self.sites.active(site, engine.step):
            return
        if self.reference is not None:
            reference, self.chosen_by = self.reference(), "concept-attention"
        else:
            reference, self.chosen_by = self._mean_reference(), "mean over heads"
        if reference is None:  # nothing to compare with yet: every head is as good as another
            scores = torch.full((heads,), UNDEFINED_SCORE)
        else:
            boxes = self._flat_boxes(query.device)
            scores = head_scores(per_head, reference.to(query.device).float(), boxes)
        head = int(scores.argmax())
        score = float(scores[head])
        if score > self.best_score:
            self.best_score, self.best, self.best_maps = score, (site, head), per_head[:, head].clone()

    def _flat_boxes(self, device: torch.device) -> torch.Tensor:
        """(G, N) boxes on ``device``, stacked once rather than at every candidate block."""
        key = str(device)
        if key not in self._boxes_on:
            self._boxes_on[key] = torch.stack([b.flatten() for b in self.boxes]).to(device)
        return self._boxes_on[key]

    def _mean_reference(self) -> torch.Tensor | None:
        if self.reference_total is None:
            return None
        return self.reference_total / self.reference_count

    def maps(self) -> torch.Tensor:
        """(G, rows, cols) float32: each instance's map from the chosen head."""
        if self.best_maps is None:
            raise RuntimeError("no candidate head was read: were the chosen blocks and steps run?")
        return self.best_maps.reshape(-1, *self.grid)


Source = torch.Tensor | Callable[[StepContext], torch.Tensor]


class LatentPaste(SamplerHook):
    """After step ``step``, image tokens where ``token_mask`` is True are replaced by ``source``'s.

    ``token_mask`` is (rows*cols,) or (B, rows*cols) over the token grid; ``source`` is latents in
    the backend's layout (or a callable returning them at that step).
    """

    needs_model_batch = False  # acts between steps only

    def __init__(self, backend: Backend, step: int, token_mask: torch.Tensor, source: Source) -> None:
        self.backend = backend
        self.step = step
        self.token_mask = token_mask
        self.source = source

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step != self.step:
            return None
        source = self.source(ctx) if callable(self.source) else self.source
        tokens = self.backend.image_tokens(latents)
        pasted = self.backend.image_tokens(source.to(latents.device, latents.dtype))
        mask = self.token_mask.to(tokens.device)
        mask = mask[None, :, None] if mask.dim() == 1 else mask[:, :, None]
        return self.backend.from_image_tokens(torch.where(mask, pasted, tokens), ctx.height, ctx.width)


class LatentRecorder(SamplerHook):
    """Keeps the latents after ``step`` (the object passes of Stitch), for a later paste."""

    needs_model_batch = False  # acts between steps only

    def __init__(self, step: int) -> None:
        self.step = step
        self.latents: torch.Tensor | None = None

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step == self.step:
            self.latents = latents.clone()
        return None
