"""Stitch: objects generated apart, cut out, pasted into their boxes, then finished together.

Phase 1 (the first ``object_fraction`` of the steps) runs one of two object passes:
- ``box`` (the paper's): every instance's prompt bound to its box with no base blend (tokens
  inside a box see only that box and its prompt; tokens outside see only each other and the
  background prompt), K isolated object passes carried in one latent, beside a background pass.
  At the switch step each instance's tokens are cut out by its prompt's attention mass (tokens
  holding ``keep_mass`` of it inside its box, grown by one token) and pasted into the background
  latent. The attention is read from one (block, head): the one whose maps agree best, inside the
  boxes, with ConceptAttention's maps of the same pass (FLUX-class models) or with the mean over
  all heads (others), so no head is hard-coded per model. Boxes that share a token never share a
  latent: the instances are split into groups of disjoint boxes, one object pass each (the paper
  runs one pass per instance; one latent per group is the same cost-free whenever boxes are
  apart). With ``seam_fraction`` > 0 (our option) the tokens two boxes share, and with
  ``seam_between="touching"`` the border between two touching boxes of one object, take the
  background at the switch and follow the background's path for that share of the steps, so that
  two neighbours do not grow into one shape.
- ``free`` (ours, :mod:`scenewright.executor.stitch_free`): each object drawn alone on the whole
  canvas, found by its footprint and moved into its boxes; for token grids too coarse for a box
  to hold a whole object. ``auto`` picks by grid size.
Phase 2 completes the image from there, unmasked, with the global prompt (or, on a model that
never learned layout words, the plan's objects named with their counts: ``finish_prompt``); with
``hold_fraction`` > 0 (our option) its first steps still bind each object to its prompt with
regional attention.
Cost, box pass: one run plus the background pass and the longer text sequence during phase 1 (1.18x
vanilla for 2 to 6 objects on the tiny model before the free pass existed). Free pass: one row per
distinct object and one for the background during phase 1, on a coarser schedule that reaches the
switch in ``object_steps`` steps (the default with the "fit" placement), plus redraws; measured
in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from scenewright.backends.base import Backend, GuidanceMode
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import (
    ConceptAttention,
    Edit,
    RegionMask,
    Sites,
    attention_engine,
    region_token_masks,
)
from scenewright.executor.attention.masks import box_to_tokens
from scenewright.executor.attention.masks import mass_cutout as cutout
from scenewright.executor.attention.stitch import HeadSelection, head_scores
from scenewright.executor.box_noise import (
    NOISE_SCORES,
    CleanPrediction,
    committed_noise,
    redraw_rounds,
    redrawn_count,
)
from scenewright.executor.composition import (
    SCENE_PROMPTS,
    Region,
    conditional_rows,
    encode_sequence,
    plan_regions,
    sample_with_edits,
    scene_prompt,
)
from scenewright.executor.explain import concept_vectors
from scenewright.executor.options import Bound, Choice, Range, require_choice
from scenewright.executor.placement import DEFAULT_FILL
from scenewright.executor.regional import (
    DEFAULT_IMAGE_ATTENTION,
    DEFAULT_RECHECK_SHARE,
    DEFAULT_TEXT_BOOST,
    POOLED_CHOICES,
    box_pooled,
    box_settings,
    check_pooled,
    regional_edit,
    text_boost_edit,
)
from scenewright.executor.sampler import (
    GUIDANCE_STEPS,
    SampleResult,
    SamplerHook,
    SamplingSettings,
    StepContext,
    sample,
)
from scenewright.executor.stitch_free import DEFAULT_PLACEMENT, PLACEMENTS, free_object_tokens
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Box, Plan

# Phase 1's share of the steps when ``object_fraction`` is left negative: per object pass, each
# the best of a sweep on the toy-world benchmark (docs/benchmarks.md). The free pass must switch
# later: before half the steps the global prompt still re-binds the moved objects' colours.
DEFAULT_OBJECT_FRACTION = -1.0
BOX_OBJECT_FRACTION = 0.2
FREE_OBJECT_FRACTION = 0.5
DEFAULT_KEEP_MASS = 0.95
DEFAULT_HOLD_FRACTION = 0.0
FINISH_PROMPTS = SCENE_PROMPTS
DEFAULT_FINISH_PROMPT = "auto"
# The free pass's object rows on a coarser schedule (``object_steps`` of them reach the switch's
# noise level): -1 takes FIT_OBJECT_STEPS with the "fit" placement (three-object cases of the
# benchmark: 1.13x vanilla's time, against 1.77x on the full schedule), the full one otherwise.
DEFAULT_OBJECT_STEPS = -1
FIT_OBJECT_STEPS = 6
OBJECT_PASSES = ("auto", "box", "free")
# Which tokens the seam holds (see ``seam_tokens``); "touching" took the box pass's counting from 97
# to 112 of 150 tuning cases on the embedded model against "overlap" (docs/benchmarks.md).
SEAM_BETWEEN = ("overlap", "touching")
DEFAULT_SEAM_BETWEEN = "touching"
# Image attention while the pasted objects are held to their prompts: "same" as the object pass,
# or "all" (open across boxes: the layout is set by then, and on the 16x16-token model a box a
# few tokens wide draws its shape with the whole image's help; see regional's open_image_after).
HOLD_IMAGE_ATTENTION = ("same", "region", "context", "all")
DEFAULT_OBJECT_PASS = "auto"
# "auto" takes the free pass on token grids at most this many tokens a side: there a box is two or
# three tokens wide and a model cannot draw a whole object inside it alone (measured on the
# embedded model, docs/benchmarks.md); on FLUX and SD3 grids (64 and more) the paper's box pass.
FREE_PASS_MAX_GRID = 16
# What ``stitch:key=value`` may set (checked when the name is parsed); a negative object_fraction
# or object_steps takes the default.
OPTIONS: dict[str, Bound] = {
    "object_fraction": Range(-1.0, 0.95),
    "keep_mass": Range(0.05, 1.0),
    "hold_fraction": Range(0.0, 1.0),
    "image_attention": Choice(("region", "context", "all")),
    "text_boost": Range(0.0, 10.0),
    "object_pass": Choice(OBJECT_PASSES),
    "placement": Choice(PLACEMENTS),
    "fill": Range(0.05, 1.0),
    "finish_prompt": Choice(FINISH_PROMPTS),
    "object_steps": Range(-1, 1000),
    "guidance_steps": Choice(GUIDANCE_STEPS),
    "hold_image_attention": Choice(HOLD_IMAGE_ATTENTION),
    "region_guidance": Range(0.0, 30.0),
    "noise_tries": Range(1, 16),
    "pooled": Choice(POOLED_CHOICES),
    "recheck_tries": Range(0, 8),
    "recheck_share": Range(0.0, 1.0),
    "seam_fraction": Range(0.0, 1.0),
    "seam_between": Choice(SEAM_BETWEEN),
    "noise_score": Choice(NOISE_SCORES),
}


class SeamHold(SamplerHook):
    """Keeps the seam between boxes on the background pass's path for the first finish steps.

    Two neighbouring boxes of the box pass overlap by their padding or touch; once the finish runs
    unmasked the two objects grow across that overlap or border and touch, and two shapes of one
    colour read as one (most of the box pass's counting failures on the embedded model). Holding
    the seam's tokens (``seam_tokens``) at the background's noisy value, ``(1 - sigma) * clean +
    sigma * noise`` with the background's clean prediction and noise taken at the switch, keeps a
    strip of canvas between them until the shapes are settled.
    """

    needs_model_batch = False

    def __init__(
        self,
        backend: Backend,
        seam: torch.Tensor,
        background: torch.Tensor,
        clean: torch.Tensor,
        sigma: float,
        until_step: int,
    ) -> None:
        """``background`` and ``clean``: the background pass's tokens at the switch (noise level
        ``sigma``) and its clean prediction there; the noise they imply is what the seam keeps."""
        self.backend = backend
        self.seam = seam
        self.until_step = until_step
        self.clean = clean.float()[:, seam]
        self.noise = (background.float()[:, seam] - (1.0 - sigma) * self.clean) / max(sigma, 1e-6)

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step >= self.until_step:
            return None
        tokens = self.backend.image_tokens(latents).clone()
        sigma = ctx.next_sigma
        held = (1.0 - sigma) * self.clean + sigma * self.noise
        tokens[:, self.seam] = held.to(tokens.dtype)
        return self.backend.from_image_tokens(tokens, ctx.height, ctx.width)


def choose_head(
    candidates: Sequence[torch.Tensor], references: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor]
) -> int:
    """The candidate head whose maps agree best with the reference maps inside the boxes.

    ``candidates[r]`` is (heads, rows, cols) for region ``r``, ``references[r]`` its (rows, cols)
    reference and ``boxes[r]`` its boolean token box. The score of a head is its mean Pearson
    correlation over the regions where it is defined; ties and empty scores fall back to head 0.
    """
    scores = head_scores(
        torch.stack([c.flatten(1) for c in candidates]),
        torch.stack([r.flatten() for r in references]),
        torch.stack([b.flatten() for b in boxes]),
    )
    return int(scores.argmax())


def cutout_head(
    backend: Backend,
    plan: Plan,
    spans: Sequence[tuple[int, int]],
    grid: tuple[int, int],
    row: int,
    switch: int,
) -> list[Edit]:
    """The observers that choose the cut-out head at the last object step, and the head selection
    itself last. On FLUX-class models the reference is ConceptAttention's map of each instance's
    object from the late double blocks and the candidates are the single-stream heads (where the
    paper's hand-picked FLUX.1-dev head lives); elsewhere the reference is the mean over heads of
    the first half of the joint blocks and the candidates are the heads of the second half."""
    regions = plan_regions(plan)
    read = (switch - 1, switch)
    groups = [list(range(*span)) for span in spans]
    boxes = [box_to_tokens(region.box, grid) for region in regions]
    transformer = backend.transformer
    if hasattr(transformer, "single_transformer_blocks"):  # FLUX class: has double blocks
        doubles = len(transformer.transformer_blocks)
        concept = ConceptAttention(
            concepts=concept_vectors(backend, plan),
            sites=Sites.make(steps=read, double=range(doubles // 2, doubles)),
        )
        objects = [region.object_index for region in regions]

        def reference() -> torch.Tensor | None:
            if concept.total is None or concept.count == 0:
                return None
            return concept.total[row, objects] / concept.count

        selection = HeadSelection(
            groups=groups, boxes=boxes, row=row, reference=reference, sites=Sites.make(double=(), steps=read)
        )
        return [concept, selection]
    joints = len(transformer.transformer_blocks)
    selection = HeadSelection(
        groups=groups,
        boxes=boxes,
        row=row,
        reference_sites=Sites.make(joint=range(max(1, joints // 2)), steps=read),
        sites=Sites.make(joint=range(joints // 2, joints), steps=read),
    )
    return [selection]


def _boxed_object_tokens(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    switch: int,
    keep_mass: float,
    background_prompt: str,
    image_attention: str,
    text_boost: float,
    noise_tries: int,
    pooled: str,
    edits: Sequence[Edit],
    hooks: Sequence[SamplerHook],
    progress: bool,
    recheck_tries: int = 0,
    recheck_share: float = DEFAULT_RECHECK_SHARE,
    noise_score: str = "box",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The paper's object pass: every instance bound to its box in one latent, from noise picked
    box by box among ``noise_tries`` draws (see ``box_noise``), the boxes still empty at the
    switch drawn again up to ``recheck_tries`` times.

    Returns the pass's image tokens (1, N, C), the source and target flat token indices to paste
    (the same here: nothing moves), and the report on the cutout head.
    """
    regions = plan_regions(plan)
    grid = backend.token_grid(settings.height, settings.width)
    prompts = [r.prompt for r in regions] + [background_prompt]
    encoding, negative, spans = encode_sequence(backend, prompts, settings.negative_prompt)
    mask = RegionMask(
        text_spans=spans,
        shapes=[r.box for r in regions] + [None],
        base_ratio=0.0,
        image_attention=image_attention,
    )
    row = conditional_rows(backend, settings)[0]
    boost = text_boost_edit(backend, encoding, mask, settings, text_boost)
    boxes = [r.box for r in regions]
    redrawn = 0
    with box_pooled(backend, plan, encoding, mask, settings, pooled):
        start = committed_noise(
            backend,
            encoding,
            negative,
            settings,
            [mask, *([boost] if boost else []), *edits],
            boxes,
            noise_tries,
            noise_score,
        )

        def object_steps(
            noise: torch.Tensor,
        ) -> tuple[tuple[SampleResult, HeadSelection], torch.Tensor]:
            """The object pass to the switch, with fresh cut-out readers for each round, and the
            clean image it predicts there (what the recheck reads)."""
            readers = cutout_head(backend, plan, spans[:-1], grid, row, switch)
            selection = readers[-1]
            assert isinstance(selection, HeadSelection)
            prediction = CleanPrediction()
            with attention_engine(backend, [mask, *([boost] if boost else []), *readers, *edits]) as engine:
                objects = sample(
                    backend, encoding, settings, negative=negative, hooks=[engine, *hooks, prediction],
                    progress=progress, decode=False, max_steps=switch, latents=noise,
                )  # fmt: skip
            assert prediction.predicted is not None
            return (objects, selection), prediction.predicted

        if recheck_tries:
            # The boxes still empty at the switch get fresh noise and the object pass runs again;
            # each box is then cut from the round where it holds the most (boxes of one pass are
            # disjoint, so their cutouts never overlap).
            masks = region_token_masks(boxes, grid).to(start.device)
            rounds = redraw_rounds(
                backend, settings, masks, start, object_steps, recheck_share, recheck_tries,
                first_draw=noise_tries,
            )  # fmt: skip
            redrawn = redrawn_count(rounds)
            picks = torch.stack([r.content for r in rounds]).argmax(dim=0).tolist()
            passes = [r.result for r in rounds]
        else:
            picks, passes = [0] * len(boxes), [object_steps(start)[0]]
    round_tokens = [backend.image_tokens(objects.latents) for objects, _ in passes]
    round_maps = [selection.maps().cpu() for _, selection in passes]
    tokens = round_tokens[0].clone()
    pasted = torch.zeros(grid, dtype=torch.bool)
    for box_index, pick in enumerate(picks):
        cut = cutout(round_maps[pick][box_index], passes[pick][1].boxes[box_index], keep_mass)
        cut_flat = cut.flatten().nonzero().flatten().to(tokens.device)
        tokens[:, cut_flat] = round_tokens[pick][:, cut_flat]
        pasted |= cut
    flat = pasted.flatten().nonzero().flatten()
    # The head reported is the one of the round most boxes came from.
    selection = passes[max(sorted(set(picks)), key=picks.count)][1]
    assert selection.best is not None
    (kind, block), head_index = selection.best
    report = {"block": f"{kind} {block}", "head": head_index, "chosen_by": selection.chosen_by}
    return (
        tokens,
        flat,
        flat,
        {"cutout_head": report, "boxes_redrawn": redrawn},
    )


def disjoint_groups(boxes: Sequence[Box], grid: tuple[int, int]) -> list[list[int]]:
    """Instances split into groups whose boxes share no token, greedily in plan order.

    The paper runs one object pass per instance, so two boxes that overlap never meet there; we
    carry the instances in one latent, which is the same only while their boxes are disjoint. Two
    overlapping boxes of one prompt in one latent draw one object across both (a count of six
    drawn as four on the embedded model), so each group gets its own object pass.
    """
    masks = region_token_masks(list(boxes), grid)
    groups: list[list[int]] = []
    for index in range(len(boxes)):
        for group in groups:
            if not any(bool((masks[index] & masks[other]).any()) for other in group):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


def group_plan(plan: Plan, regions: Sequence[Region], group: Sequence[int]) -> Plan:
    """The plan restricted to the instances in ``group``: each object keeps its boxes there."""
    boxes_of: dict[int, list[Box]] = {}
    for index in group:
        boxes_of.setdefault(regions[index].object_index, []).append(regions[index].box)
    objects = [
        plan.objects[index].model_copy(update={"count": len(boxes), "boxes": boxes})
        for index, boxes in sorted(boxes_of.items())
    ]
    return plan.model_copy(update={"objects": objects, "relations": []})


def _beside(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` (rows, cols) grown by the tokens that share an edge with it. Edges only, not
    corners (so not a 3x3 max-pool): boxes meeting at a corner merged in none of the 45 merged
    pairs measured on the embedded model, and a seam there would take a corner of each object."""
    grown = mask.clone()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def seam_tokens(
    regions: Sequence[Region], grid: tuple[int, int], between: str = DEFAULT_SEAM_BETWEEN
) -> torch.Tensor:
    """The flat (rows*cols) boolean mask of the tokens ``SeamHold`` keeps on the background's path.

    "overlap": the tokens two boxes share. "touching": those too, and where two boxes of one object
    touch without sharing a token, the later box's tokens along their common edge. Two instances of
    one prompt that touch merge into one shape (two thirds of the box pass's merged counts on the
    embedded model came from boxes that only touch); instances of different objects are left alone,
    since telling them apart does not need a gap of canvas.
    """
    require_choice("seam_between", between, SEAM_BETWEEN)
    masks = region_token_masks([r.box for r in regions], grid)
    seam = masks.sum(dim=0) >= 2
    if between == "overlap":
        return seam
    boxes = masks.reshape(len(regions), *grid)
    for later in range(len(regions)):
        for earlier in range(later):
            same_object = regions[later].object_index == regions[earlier].object_index
            if same_object and not bool((boxes[earlier] & boxes[later]).any()):
                seam |= (_beside(boxes[earlier]) & boxes[later]).flatten()
    return seam


def finish_prompt_text(backend: Backend, plan: Plan, finish_prompt: str) -> str:
    """Phase 2's prompt (see ``scene_prompt``; naming the objects took position 80% -> 92% on
    the embedded model's benchmark, docs/benchmarks.md)."""
    return scene_prompt(backend, plan, finish_prompt)


def _box_pass_tokens(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    object_settings: SamplingSettings,
    switch: int,
    background_prompt: str,
    edits: Sequence[Edit],
    hooks: Sequence[SamplerHook],
    progress: bool,
    *,
    keep_mass: float,
    image_attention: str,
    text_boost: float,
    noise_tries: int,
    pooled: str,
    recheck_tries: int,
    recheck_share: float,
    seam_fraction: float,
    seam_between: str,
    noise_score: str = "box",
) -> tuple[torch.Tensor, int, dict[str, Any], list[SamplerHook]]:
    """Phase 1 of the box pass: the background pass to the switch, one object pass per group of
    disjoint boxes pasted into it, and the seam cut back to the background.

    Returns the image tokens to finish from, how many tokens were pasted, the report's entries and
    the hooks the finish must run with (the seam's, when one is held)."""
    # With CFG and a background prompt equal to the negative one, the guided velocity is the
    # unguided one: one batch row gives the same latents at half cost.
    background_settings = settings
    if (
        backend.guidance_mode is GuidanceMode.CFG
        and background_prompt.strip() == settings.negative_prompt.strip()
    ):
        background_settings = replace(settings, guidance=1.0)
    seam_steps = round(seam_fraction * settings.steps)
    background_clean = CleanPrediction()  # only watched when a seam is held
    background = sample_with_edits(
        backend, backend.encode_prompts([background_prompt]), background_settings, edits,
        progress=progress, decode=False, max_steps=switch, hooks=[background_clean] if seam_steps else [],
    )  # fmt: skip
    tokens = backend.image_tokens(background.latents).clone()
    regions = plan_regions(plan)
    grid = backend.token_grid(settings.height, settings.width)
    groups = disjoint_groups([r.box for r in regions], grid)
    pasted = torch.zeros(tokens.shape[1], dtype=torch.bool, device=tokens.device)
    found: dict[str, Any] = {"object_groups": len(groups), "boxes_redrawn": 0}
    seam_hooks: list[SamplerHook] = []
    seam, background_seam = None, None
    if seam_steps > 0 and background_clean.predicted is not None:
        # Read before the pastes: the hook and the cut back both take the background's tokens.
        seam = seam_tokens(regions, grid, seam_between).nonzero().flatten().to(tokens.device)
        background_seam = tokens[:, seam].clone()
        clean = backend.image_tokens(background_clean.predicted)
        seam_hooks.append(
            SeamHold(backend, seam, tokens, clean, background_clean.reached, switch + seam_steps)
        )
    for group in groups:
        group_tokens, sources, targets, group_found = _boxed_object_tokens(
            backend, plan if len(groups) == 1 else group_plan(plan, regions, group), object_settings,
            switch, keep_mass, background_prompt, image_attention, text_boost, noise_tries, pooled,
            edits, hooks, progress, recheck_tries, recheck_share, noise_score,
        )  # fmt: skip
        tokens[:, targets.to(tokens.device)] = group_tokens[:, sources.to(tokens.device)]
        pasted[targets.to(tokens.device)] = True
        found.setdefault("cutout_head", group_found["cutout_head"])
        found["boxes_redrawn"] += group_found["boxes_redrawn"]
    if seam is not None and background_seam is not None:
        tokens[:, seam] = background_seam
    return tokens, int(pasted.sum()), found, seam_hooks


def render_stitch(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    object_fraction: float = DEFAULT_OBJECT_FRACTION,
    keep_mass: float = DEFAULT_KEEP_MASS,
    hold_fraction: float = DEFAULT_HOLD_FRACTION,
    image_attention: str = DEFAULT_IMAGE_ATTENTION,
    object_pass: str = DEFAULT_OBJECT_PASS,
    placement: str = DEFAULT_PLACEMENT,
    fill: float = DEFAULT_FILL,
    finish_prompt: str = DEFAULT_FINISH_PROMPT,
    object_steps: int = DEFAULT_OBJECT_STEPS,
    text_boost: float = DEFAULT_TEXT_BOOST,
    guidance_steps: str = "model",
    hold_image_attention: str = "same",
    region_guidance: float = 0.0,
    noise_tries: int = 1,
    pooled: str = "scene",
    recheck_tries: int = 0,
    recheck_share: float = DEFAULT_RECHECK_SHARE,
    seam_fraction: float = 0.0,
    seam_between: str = DEFAULT_SEAM_BETWEEN,
    noise_score: str = "box",
) -> RenderResult:
    """Render ``plan`` in two phases; ``object_pass`` is "box" (the paper's: objects drawn in
    their boxes), "free" (drawn anywhere, then moved into their boxes) or "auto" (free on coarse
    token grids, box elsewhere; the report says which ran). The box pass takes regional's
    ``image_attention``, ``text_boost``, ``guidance_steps``, ``region_guidance``, ``noise_tries``,
    ``pooled``, ``recheck_tries`` and ``recheck_share`` (regional's check, made at the switch; see
    executor.regional; the box pass's own pooled vector is the background prompt's), and
    ``seam_fraction`` and ``seam_between`` (see ``SeamHold`` and ``seam_tokens``) and
    ``noise_score`` (how a box's noise draw is scored, ``box_noise.box_scores``): a model that
    skips CFG at high noise (the toy models) would otherwise draw its boxes unguided, since the
    object pass is exactly those first steps.
    The hold steps take them too (but the noise and the pooled vectors), with
    ``hold_image_attention``."""
    object_settings = box_settings(backend, settings, guidance_steps, region_guidance)
    check_pooled(backend, pooled)
    require_choice("noise_score", noise_score, NOISE_SCORES)
    require_choice("object_pass", object_pass, OBJECT_PASSES)
    require_choice("seam_between", seam_between, SEAM_BETWEEN)
    require_choice("finish_prompt", finish_prompt, FINISH_PROMPTS)
    regions = plan_regions(plan)
    if not regions:
        fallback = render_vanilla(backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
        fallback.report["note"] = "no boxes in the plan: rendered without stitching"
        return fallback
    if object_pass == "auto":
        grid = backend.token_grid(settings.height, settings.width)
        object_pass = "free" if max(grid) <= FREE_PASS_MAX_GRID else "box"
    if object_fraction < 0:
        object_fraction = FREE_OBJECT_FRACTION if object_pass == "free" else BOX_OBJECT_FRACTION
    if object_fraction >= 1:
        raise InvalidInputError(
            "object_fraction", f"{object_fraction} leaves no steps to finish the image", "use 0.1 to 0.7"
        )
    switch = max(1, round(object_fraction * settings.steps))
    if object_steps < 0:
        object_steps = FIT_OBJECT_STEPS if placement == "fit" else 0
    background_prompt = plan.background or backend.defaults.background_prompt
    finish_hooks = list(hooks)
    if object_pass == "box":
        tokens, pasted_tokens, found, seam_hooks = _box_pass_tokens(
            backend, plan, settings, object_settings, switch, background_prompt, edits, hooks, progress,
            keep_mass=keep_mass, image_attention=image_attention, text_boost=text_boost,
            noise_tries=int(noise_tries), pooled=pooled, recheck_tries=int(recheck_tries),
            recheck_share=recheck_share, seam_fraction=seam_fraction, seam_between=seam_between,
            noise_score=noise_score,
        )  # fmt: skip
        finish_hooks = [*hooks, *seam_hooks]
    else:
        tokens, pasted_tokens, found = free_object_tokens(
            backend, plan, settings, switch, keep_mass, background_prompt, edits, hooks, progress,
            placement=placement, fill=fill, object_steps=object_steps,
        )  # fmt: skip
    start = backend.from_image_tokens(tokens, settings.height, settings.width)

    # Our addition to Stitch: keep each pasted object bound to its prompt (regional attention with
    # the base prompt blended in) for ``hold_fraction`` more steps, so that the global prompt
    # cannot re-bind attributes (a model weak at composition turns "a cyan heart and a green
    # ring" into two green rings) before the objects are settled.
    hold = min(settings.steps - switch, round(hold_fraction * settings.steps))
    if hold > 0:
        require_choice("hold_image_attention", hold_image_attention, HOLD_IMAGE_ATTENTION)
        held_attention = image_attention if hold_image_attention == "same" else hold_image_attention
        held, held_negative, region = regional_edit(backend, plan, settings, image_attention=held_attention)
        region = replace(region, sites=Sites.make(steps=(switch, switch + hold)))
        boost = text_boost_edit(backend, held, region, settings, text_boost)
        start = sample_with_edits(
            backend, held, object_settings, [region, *([boost] if boost else []), *edits],
            negative=held_negative, hooks=finish_hooks, latents=start, start_step=switch, max_steps=switch + hold,
            decode=False, progress=progress,
        ).latents  # fmt: skip
    finish_text = finish_prompt_text(backend, plan, finish_prompt)
    result = sample_with_edits(
        backend, backend.encode_prompts([finish_text]), settings, edits,
        hooks=finish_hooks, latents=start, start_step=switch + hold, progress=progress,
    )  # fmt: skip
    image = backend.to_pil(result.images)[0]
    report = {
        "object_pass": object_pass, "switch_step": switch, "hold_steps": hold,
        "finish_prompt": finish_text, "pasted_tokens": pasted_tokens, "objects": len(regions), **found,
    }  # fmt: skip
    if object_pass == "box":
        report["pooled"] = pooled
    return RenderResult(
        image=image, plan=plan, settings=settings, strategy="stitch", sample=result, report=report
    )
