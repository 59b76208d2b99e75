"""Stitch's free object pass: objects drawn anywhere, found by their footprint, moved into boxes.

Our variant of Stitch's phase 1 for models whose token grid is too coarse to draw an object
inside a box of two or three tokens (the embedded model: 8x8 tokens). Each object is drawn alone
on the whole canvas, one batch row per object beside a background row, all from the same noise;
at the switch step the token-wise distance between an object's row and the background's is its
footprint, which is moved by whole tokens onto each of its boxes' centres and pasted. A row whose
footprint is still spread over the canvas has not drawn its object yet and is drawn again from
new noise. See docs/benchmarks.md for the measurements behind each choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scenewright.backends.base import Backend
from scenewright.executor.attention import Edit
from scenewright.executor.attention.masks import box_to_tokens, mass_cutout
from scenewright.executor.composition import plan_regions, sample_with_edits
from scenewright.executor.sampler import SamplerHook, SamplingSettings, make_generator
from scenewright.planner.plan import Plan

# The free pass redraws an object whose footprint still covers more than MAX_SPREAD of the canvas
# (the share holding 80% of it) at the switch, up to REDRAWS times, each from new noise.
MAX_SPREAD = 0.3
REDRAWS = 2
REDRAW_SEED_STEP = 7919


def translate_into_box(
    attention: torch.Tensor, keep: torch.Tensor, box: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where ``keep``'s tokens go so that their attention-weighted centre lands on ``box``'s centre.

    Returns (source, target) flat token indices of equal length: the kept tokens that stay on the
    grid after the whole-token shift, and where each one goes.
    """
    rows, cols = keep.shape
    ys = torch.arange(rows, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(cols, dtype=torch.float32)[None, :] + 0.5
    weights = (attention.float().clamp(min=0) * keep).reshape(rows, cols)
    if float(weights.sum()) <= 0:
        weights = keep.float()
    total = weights.sum()
    centre_y, centre_x = float((weights * ys).sum() / total), float((weights * xs).sum() / total)
    inside = box.nonzero().float() + 0.5
    dy = round(float(inside[:, 0].mean()) - centre_y)
    dx = round(float(inside[:, 1].mean()) - centre_x)
    src = keep.nonzero()
    dst = src + torch.tensor([dy, dx])
    on_grid = (dst[:, 0] >= 0) & (dst[:, 0] < rows) & (dst[:, 1] >= 0) & (dst[:, 1] < cols)
    src, dst = src[on_grid], dst[on_grid]
    return src[:, 0] * cols + src[:, 1], dst[:, 0] * cols + dst[:, 1]


def footprint_spread(footprint: torch.Tensor, mass: float = 0.8) -> float:
    """The share of the grid holding ``mass`` of a footprint: small for a formed object, near
    ``mass`` for a row that has not drawn one yet (its departure is everywhere and faint)."""
    values = footprint.flatten().float().clamp(min=0).sort(descending=True).values
    total = float(values.sum())
    if total <= 0:
        return 1.0
    needed = int((values.cumsum(0) / total < mass).sum().item()) + 1
    return needed / values.numel()


def strongest_per_target(
    sources: torch.Tensor, targets: torch.Tensor, strengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where moved instances overlap, each target token takes the source with the strongest
    footprint: one object's faint halo must not paint over its neighbour's body."""
    if targets.numel() == 0:
        return sources, targets
    order = torch.argsort(strengths, stable=True)  # weakest first, so the last write per target wins
    sources, targets = sources[order], targets[order]
    unique, inverse = torch.unique(targets, return_inverse=True)
    positions = torch.arange(targets.numel())
    last = torch.full((unique.numel(),), -1, dtype=torch.long).scatter_reduce(
        0, inverse, positions, reduce="amax"
    )
    return sources[last], targets[last]


def _object_rows(
    backend: Backend,
    prompts: list[str],
    background_prompt: str,
    settings: SamplingSettings,
    seed: int,
    switch: int,
    edits: Sequence[Edit],
    hooks: Sequence[SamplerHook],
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 1 for ``prompts`` and the background, all from one noise: every row's image tokens
    (the background's last) and each prompt row's departure from the background's, (K, N)."""
    encoding = backend.encode_prompts([*prompts, background_prompt])
    noise = backend.prepare_noise(1, settings.height, settings.width, make_generator(seed))
    same_noise = noise.expand(len(prompts) + 1, *noise.shape[1:]).clone()
    rows = sample_with_edits(
        backend, encoding, settings, edits, latents=same_noise, hooks=hooks, progress=progress,
        decode=False, max_steps=switch,
    )  # fmt: skip
    tokens = backend.image_tokens(rows.latents)  # (K + 1, N, C)
    # From the same noise, what a row adds to the background is its object: the token-wise
    # distance between the two passes is the object's footprint, on any model, with no attention.
    departure = (tokens[:-1].float() - tokens[-1:].float()).norm(dim=-1).cpu()
    return tokens, departure


def free_object_tokens(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    switch: int,
    keep_mass: float,
    background_prompt: str,
    edits: Sequence[Edit],
    hooks: Sequence[SamplerHook],
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, object]]:
    """Our variant for models that cannot draw inside a small box: each instance drawn alone on
    the whole canvas (one batch row per object, beside the background's row and from the same noise),
    found where its row departs from the background's, and moved by whole tokens so that its
    centre lands on its box's centre.

    Returns the background's image tokens (1, N, C), the object rows' flattened to (1, K*N, C),
    the source indices into them, the target indices on the grid, and how many tokens each
    instance brought.
    """
    regions = plan_regions(plan)
    grid = backend.token_grid(settings.height, settings.width)
    # One row per object, not per instance: the instances of "three red circles" would be three
    # identical rows (same prompt, same noise), so one is drawn and moved into every box.
    objects = list(dict.fromkeys(r.object_index for r in regions))
    prompts = {r.object_index: r.prompt for r in regions}
    tokens, departure = _object_rows(
        backend, [prompts[i] for i in objects], background_prompt, settings, settings.seed, switch,
        edits, hooks, progress,
    )  # fmt: skip
    background_tokens = tokens[-1:]
    tokens, departure = tokens[:-1].clone(), departure.clone()
    # A row whose footprint is still spread over the canvas has not drawn its object yet at this
    # noise (measured: such rows end with the object missing); it is drawn again from other noise.
    redrawn = [0] * len(objects)
    for attempt in range(1, REDRAWS + 1):
        weak = [row for row in range(len(objects)) if footprint_spread(departure[row]) > MAX_SPREAD]
        if not weak:
            break
        again, again_departure = _object_rows(
            backend, [prompts[objects[row]] for row in weak], background_prompt, settings,
            settings.seed + REDRAW_SEED_STEP * attempt, switch, edits, hooks, progress,
        )  # fmt: skip
        for index, row in enumerate(weak):
            if footprint_spread(again_departure[index]) < footprint_spread(departure[row]):
                tokens[row], departure[row] = again[index], again_departure[index]
                redrawn[row] = attempt
    n_tokens = grid[0] * grid[1]
    all_tokens = torch.ones(grid, dtype=torch.bool)
    sources, targets, strengths, moved = [], [], [], []
    for region in regions:
        row = objects.index(region.object_index)
        footprint = departure[row].reshape(grid)
        keep = mass_cutout(footprint, all_tokens, keep_mass)
        src, dst = translate_into_box(footprint, keep, box_to_tokens(region.box, grid))
        sources.append(src + row * n_tokens)
        targets.append(dst)
        strengths.append(departure[row][src] / departure[row].max().clamp(min=1e-12))
        moved.append(int(src.numel()))
    source, target = strongest_per_target(torch.cat(sources), torch.cat(targets), torch.cat(strengths))
    flat = tokens.reshape(1, -1, tokens.shape[-1])
    spread = [round(footprint_spread(departure[row]), 3) for row in range(len(objects))]
    found = {"moved_tokens": moved, "footprint_spread": spread, "redrawn": redrawn}
    return background_tokens, flat, source, target, found
