"""Stitch's free object pass: objects drawn anywhere, found by their footprint, moved into boxes.

Our variant of Stitch's phase 1 for models whose token grid is too coarse to draw an object
inside a box of two or three tokens (the embedded model: 8x8 tokens). Each object is drawn alone
on the whole canvas, one batch row per object beside a background row, all from the same noise;
at the switch step the token-wise distance between an object's row and the background's is its
footprint. The object's clean estimate, cut out where it departs from the background's and
limited to its footprint, is shrunk to fit each of its boxes and pasted at the latent's own
resolution (:mod:`scenewright.executor.stitch.placement`). A row whose footprint is still spread
over the canvas has not drawn its object yet and is drawn again from new noise. The rows may run a
coarser schedule to the switch (``object_steps``): they are most of Stitch's cost. See
docs/benchmarks.md for the measurements behind each choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit
from scenewright.executor.attention.masks import mass_cutout
from scenewright.executor.composition import plan_regions, sample_with_edits
from scenewright.executor.object_lora import row_loras
from scenewright.executor.sampler import SamplerHook, SamplingSettings, make_generator
from scenewright.executor.stitch.placement import (
    DEFAULT_FILL,
    CleanAndNoise,
    LastStepSplit,
    fit_into_box,
    object_alpha,
    paste,
    upsample_gate,
)
from scenewright.planner.plan import Plan

# The free pass redraws an object whose footprint still covers more than MAX_SPREAD of the canvas
# (the share holding 80% of it) at the switch, up to REDRAWS times, each from new noise.
MAX_SPREAD = 0.3
REDRAWS = 2
REDRAW_SEED_STEP = 7919


def footprint_spread(footprint: torch.Tensor, mass: float = 0.8) -> float:
    """The share of the grid holding ``mass`` of a footprint: small for a formed object, near
    ``mass`` for a row that has not drawn one yet (its departure is everywhere and faint)."""
    values = footprint.flatten().float().clamp(min=0).sort(descending=True).values
    total = float(values.sum())
    if total <= 0:
        return 1.0
    needed = int((values.cumsum(0) / total < mass).sum().item()) + 1
    return needed / values.numel()


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
) -> tuple[torch.Tensor, torch.Tensor, CleanAndNoise]:
    """Phase 1 for ``prompts`` and the background, all from one noise: every row's image tokens
    (the background's last), each prompt row's departure from the background's, (K, N), and every
    row's latents split into the predicted clean image and the remaining noise."""
    encoding = backend.encode_prompts([*prompts, background_prompt])
    noise = backend.prepare_noise(1, settings.height, settings.width, make_generator(seed))
    same_noise = noise.expand(len(prompts) + 1, *noise.shape[1:]).clone()
    last_step = LastStepSplit()
    rows = sample_with_edits(
        backend, encoding, settings, edits, latents=same_noise, hooks=[*hooks, last_step],
        progress=progress, decode=False, max_steps=switch,
    )  # fmt: skip
    tokens = backend.image_tokens(rows.latents)  # (K + 1, N, C)
    # From the same noise, what a row adds to the background is its object: the token-wise
    # distance between the two passes is the object's footprint, on any model, with no attention.
    departure = (tokens[:-1].float() - tokens[-1:].float()).norm(dim=-1).cpu()
    return tokens, departure, last_step.split()


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
    fill: float = DEFAULT_FILL,
    object_steps: int = 0,
) -> tuple[torch.Tensor, int, dict[str, object]]:
    """Our variant for models that cannot draw inside a small box: each object drawn alone on
    the whole canvas (one batch row per object, beside the background's row and from the same
    noise), found where its row departs from the background's, and moved into each of its boxes
    on the clean-image estimate at the latent's own resolution, shrunk to fit the box
    (:mod:`scenewright.executor.stitch.placement`; moving whole tokens instead let small copies
    touch and merge: counting 72% against 94%).

    ``object_steps`` > 0 runs the object rows on a coarser schedule that reaches the
    switch's noise level in that many steps: the paste only needs each object's clean estimate,
    and the rows are where Stitch's cost goes.

    Returns the background's latents at the switch step with every instance pasted, as image
    tokens (1, N, C), how many tokens the paste changed, and the report.
    """
    if not 0 < fill <= 1:
        raise InvalidInputError(
            "fill", f"{fill} is not a share of the box", "use a value in (0, 1], e.g. 0.8"
        )
    if object_steps < 0:
        raise InvalidInputError("object_steps", f"{object_steps} steps", "use 0 (the full schedule) or more")
    rows_settings, rows_switch = settings, switch
    if object_steps:
        # The same noise level at the switch on a schedule with fewer steps: k of round(k * steps /
        # switch) (exact for FLUX-style schedules, which depend on the fraction of steps taken).
        rows_switch = min(object_steps, switch)
        rows_settings = replace(
            settings, steps=max(rows_switch + 1, round(rows_switch * settings.steps / switch))
        )
    regions = plan_regions(plan)
    grid = backend.token_grid(settings.height, settings.width)
    # One row per object, not per instance: the instances of "three red circles" would be three
    # identical rows (same prompt, same noise), so one is drawn and moved into every box.
    objects = list(dict.fromkeys(r.object_index for r in regions))
    prompts = {r.object_index: r.prompt for r in regions}
    with row_loras(backend, plan, [*objects, None]):
        tokens, departure, split = _object_rows(
            backend, [prompts[i] for i in objects], background_prompt, rows_settings, settings.seed,
            rows_switch, edits, hooks, progress,
        )  # fmt: skip
    background_tokens = tokens[-1:]
    tokens, departure = tokens[:-1].clone(), departure.clone()
    clean, noise = split.clean.clone(), split.noise
    # A row whose footprint is still spread over the canvas has not drawn its object yet at this
    # noise (measured: such rows end with the object missing); it is drawn again from other noise.
    redrawn = [0] * len(objects)
    for attempt in range(1, REDRAWS + 1):
        weak = [row for row in range(len(objects)) if footprint_spread(departure[row]) > MAX_SPREAD]
        if not weak:
            break
        with row_loras(backend, plan, [*(objects[row] for row in weak), None]):
            again, again_departure, again_split = _object_rows(
                backend, [prompts[objects[row]] for row in weak], background_prompt, rows_settings,
                settings.seed + REDRAW_SEED_STEP * attempt, rows_switch, edits, hooks, progress,
            )  # fmt: skip
        for index, row in enumerate(weak):
            if footprint_spread(again_departure[index]) < footprint_spread(departure[row]):
                tokens[row], departure[row] = again[index], again_departure[index]
                clean[row] = again_split.clean[index]
                redrawn[row] = attempt
    all_tokens = torch.ones(grid, dtype=torch.bool)
    keeps = [mass_cutout(departure[row].reshape(grid), all_tokens, keep_mass) for row in range(len(objects))]
    spread = [round(footprint_spread(departure[row]), 3) for row in range(len(objects))]
    found: dict[str, object] = {"footprint_spread": spread, "redrawn": redrawn}
    # The background row's clean estimate with every instance composited over it, noised back
    # with the background's own noise: outside the objects the latents stay the background's.
    height, width = settings.height, settings.width
    spatial_clean = backend.spatial_latents(clean, height, width)
    canvas = spatial_clean[-1]
    size = (canvas.shape[-2], canvas.shape[-1])
    # One cut-out per object, shared by its instances (a labelling pass each, so not per box).
    alphas = [
        object_alpha(spatial_clean[row], spatial_clean[-1], upsample_gate(keeps[row], size))
        for row in range(len(objects))
    ]
    scales: list[float | None] = []
    for region in regions:
        row = objects.index(region.object_index)
        placed = fit_into_box(spatial_clean[row], alphas[row], region.box, fill)
        scales.append(None if placed is None else round(placed.scale, 3))
        if placed is not None:
            canvas = paste(canvas, placed)
    spatial_noise = backend.spatial_latents(noise[-1:], height, width)
    sigma = switch_sigma(backend, settings, switch)  # phase 2's, whatever schedule the rows ran
    latents = (1 - sigma) * canvas[None] + sigma * spatial_noise
    pasted = backend.image_tokens(backend.from_spatial_latents(latents, height, width)).to(
        background_tokens.dtype
    )
    changed = int(((pasted - background_tokens).abs().amax(dim=-1) > 1e-4).sum())
    found["scales"] = scales
    found["object_steps"] = rows_switch
    return pasted, changed, found


def switch_sigma(backend: Backend, settings: SamplingSettings, switch: int) -> float:
    """The noise level of ``settings``' schedule after ``switch`` steps."""
    scheduler = backend.new_scheduler()
    backend.set_timesteps(scheduler, settings.steps, settings.height, settings.width)
    return float(scheduler.sigmas[switch])
