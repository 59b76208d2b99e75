"""The paper's object pass: every instance drawn in its own box, cut out by one head's attention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from scenewright.backends.base import Backend, GuidanceMode
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
from scenewright.executor.composition import (
    Region,
    conditional_rows,
    encode_sequence,
    plan_regions,
    sample_with_edits,
)
from scenewright.executor.explain import concept_vectors
from scenewright.executor.object_lora import object_loras
from scenewright.executor.regional import (
    box_noise,
    box_pooled,
    own_pooled,
    text_boost_edit,
)
from scenewright.executor.regional.box_noise import (
    CleanPrediction,
    committed_noise,
)
from scenewright.executor.sampler import SamplerHook, SamplingSettings, sample
from scenewright.executor.stitch.borrow import BoxDraft, borrow_drafts
from scenewright.executor.stitch.hold import BackgroundHold, canvas_tokens, seam_tokens
from scenewright.planner.plan import Box, Plan


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
    joints = sum(1 for block in backend.blocks() if block.kind == "joint")
    selection = HeadSelection(
        groups=groups,
        boxes=boxes,
        row=row,
        reference_sites=Sites.make(joint=range(max(1, joints // 2)), steps=read),
        sites=Sites.make(joint=range(joints // 2, joints), steps=read),
    )
    return [selection]


@dataclass
class GroupPass:
    """One object pass at the switch: its image tokens (1, N, C); the clean image predicted there
    (same shape); the flat tokens to paste;
    each box's content (``box_noise.box_content``); the noise level reached; the report's entries."""

    tokens: torch.Tensor
    clean: torch.Tensor
    pasted: torch.Tensor
    content: torch.Tensor
    sigma: float
    report: dict[str, Any]


def object_pass(
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
    noise_score: str = "box",
    cutout_kernel: int = 3,
) -> GroupPass:
    """The paper's object pass: every instance bound to its box in one latent, from noise picked
    box by box among ``noise_tries`` draws (see ``box_noise``)."""
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
    with (
        box_pooled(backend, own_pooled(backend, regions, pooled), encoding, mask, settings, pooled),
        object_loras(backend, plan, encoding, mask, settings),
    ):
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
        # The object pass to the switch, reading the cut-out head and the clean image it predicts
        # there (how full each box is, for ``borrow_share``).
        readers = cutout_head(backend, plan, spans[:-1], grid, row, switch)
        selection = readers[-1]
        assert isinstance(selection, HeadSelection)
        prediction = CleanPrediction()
        with attention_engine(backend, [mask, *([boost] if boost else []), *readers, *edits]) as engine:
            objects = sample(
                backend, encoding, settings, negative=negative, hooks=[engine, *hooks, prediction],
                progress=progress, decode=False, max_steps=switch, latents=start,
            )  # fmt: skip
        assert prediction.predicted is not None  # set by the pass's last step
        masks = region_token_masks(boxes, grid).to(prediction.predicted.device)
        content = box_noise.box_content(backend, prediction.predicted, masks)
    tokens = backend.image_tokens(objects.latents).clone()
    clean = backend.image_tokens(prediction.predicted).clone()
    maps = selection.maps().cpu()
    pasted = torch.zeros(grid, dtype=torch.bool)
    for box_index in range(len(boxes)):
        pasted |= cutout(maps[box_index], selection.boxes[box_index], keep_mass, cutout_kernel)
    flat = pasted.flatten().nonzero().flatten().to(tokens.device)
    assert selection.best is not None
    (kind, block), head_index = selection.best
    report = {"block": f"{kind} {block}", "head": head_index, "chosen_by": selection.chosen_by}
    return GroupPass(
        tokens=tokens, clean=clean, pasted=flat, content=content.float().cpu(), sigma=prediction.reached,
        report={"cutout_head": report},
    )  # fmt: skip


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


def box_pass_tokens(
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
    seam_fraction: float,
    noise_score: str = "box",
    canvas_fraction: float = 0.0,
    borrow_share: float = 0.0,
    cutout_kernel: int = 3,
) -> tuple[torch.Tensor, int, dict[str, Any], list[SamplerHook]]:
    """Phase 1 of the box pass: the background pass to the switch, one object pass per group of
    disjoint boxes pasted into it, the empty boxes filled from their siblings' drafts
    (``borrow_share``, see ``stitch.borrow``) and the held tokens (seam, canvas) cut back to the
    background.

    Returns the image tokens to finish from, how many tokens were pasted, the report's entries and
    the hooks the finish must run with (``BackgroundHold``, one per held set)."""
    # With CFG and a background prompt equal to the negative one, the guided velocity is the
    # unguided one: one batch row gives the same latents at half cost.
    background_settings = settings
    if (
        backend.guidance_mode is GuidanceMode.CFG
        and background_prompt.strip() == settings.negative_prompt.strip()
    ):
        background_settings = replace(settings, guidance=1.0)
    seam_steps = round(seam_fraction * settings.steps)
    canvas_steps = round(canvas_fraction * settings.steps)
    background_clean = CleanPrediction()  # only watched when tokens are held
    background = sample_with_edits(
        backend, backend.encode_prompts([background_prompt]), background_settings, edits,
        progress=progress, decode=False, max_steps=switch,
        hooks=[background_clean] if seam_steps or canvas_steps else [],
    )  # fmt: skip
    tokens = backend.image_tokens(background.latents).clone()
    regions = plan_regions(plan)
    grid = backend.token_grid(settings.height, settings.width)
    groups = disjoint_groups([r.box for r in regions], grid)
    pasted = torch.zeros(tokens.shape[1], dtype=torch.bool, device=tokens.device)
    found: dict[str, Any] = {"object_groups": len(groups)}
    holds: list[SamplerHook] = []
    held = torch.zeros(tokens.shape[1], dtype=torch.bool)
    if background_clean.predicted is not None:
        # Read before the pastes: the hooks and the cut back both take the background's tokens.
        clean = backend.image_tokens(background_clean.predicted)
        held_sets = [
            (seam_steps, seam_tokens(regions, grid) if seam_steps else None),
            (canvas_steps, canvas_tokens(regions, grid) if canvas_steps else None),
        ]
        for steps, mask in held_sets:
            if mask is not None:
                held |= mask
                flat = mask.nonzero().flatten().to(tokens.device)
                holds.append(
                    BackgroundHold(backend, flat, tokens, clean, background_clean.reached, switch + steps)
                )
    held_index = held.nonzero().flatten().to(tokens.device)
    background_held = tokens[:, held_index].clone()
    drafts: dict[int, BoxDraft] = {}  # by region index
    sigma = 1.0
    for group in groups:
        done = object_pass(
            backend, plan if len(groups) == 1 else group_plan(plan, regions, group), object_settings,
            switch, keep_mass, background_prompt, image_attention, text_boost, noise_tries, pooled,
            edits, hooks, progress, noise_score, cutout_kernel,
        )  # fmt: skip
        tokens[:, done.pasted] = done.tokens[:, done.pasted]
        pasted[done.pasted] = True
        found.setdefault("cutout_head", done.report["cutout_head"])
        for local, index in enumerate(group):  # a group's regions keep the plan's order
            drafts[index] = BoxDraft(done.tokens, done.clean, float(done.content[local]))
        sigma = done.sigma
    if borrow_share > 0:
        in_order = [drafts[index] for index in range(len(regions))]
        found["boxes_borrowed"] = len(borrow_drafts(regions, in_order, tokens, grid, sigma, borrow_share))
    tokens[:, held_index] = background_held
    return tokens, int(pasted.sum()), found, holds
