"""Regional prompting (Regional-Prompting-FLUX): each instance's prompt bound to its box.

The text sequence is ``[instance 1; ...; instance N; background; base]``; for the first
``inject_fraction`` of the steps each region's text and image tokens only see each other, the
background prompt covers what no box does, and the base (global) prompt's pass is blended in with
``base_ratio``. After that, plain attention with the base prompt finishes the image.

The defaults compute what the authors' code computes (docs/parity.md): in FLUX's single-stream
blocks the base prompt keeps its own image stream (``base_stream="separate"``), and blocks skipped
by ``double_inject_interval`` / ``single_inject_interval`` still run the regional pass, unmasked,
with the base pass blended in. ``base_stream="shared"`` keeps one image stream (the base pass
reads the blended tokens) and attends plainly over [base; image] in skipped blocks; the embedded
toy models are tuned with it (their strategy_defaults.json). The additions below are off by
default; one named explicitly applies on top (the run is then no longer the authors' algorithm).

Our additions, measured on the 16x16-token toy model (docs/benchmarks.md):
- image tokens in a box may also read the uncovered canvas (``image_attention="context"``), and a
  box's image queries get ``text_boost`` added to their logits on their own prompt's words, so a
  small region commits to drawing its object instead of leaving its box empty;
- ``open_image_after``: once the layout is set, image tokens attend across regions (the text stays
  bound to its box), so a box a few tokens wide draws its shape with the whole image's help
  instead of a shapeless blob of the right colour;
- ``guidance_steps="all"``: classifier-free guidance on every regional step, also at the noise
  levels where the model's own settings skip it, because that is where a box commits;
- ``region_guidance``: a CFG scale of its own for the regional steps (the run's guidance
  finishes the image), since a box commits more surely under stronger guidance;
- ``noise_tries``: each box's starting noise picked from a few draws by the first step's
  prediction (``box_noise``), since a box whose noise does not favour its object stays empty;
- ``recheck_at``: at that share of the steps, a box whose predicted clean image is still empty
  gets a fresh noise draw and the render starts again (``box_noise.box_content``), since a box
  may lose its object after the first step, where ``noise_tries`` chose;
- ``pooled="box"``: on FLUX-class models each box's tokens are modulated by its own prompt's
  pooled vector (``region_pooled``), since the scene's pooled vector names every object to every
  box and a box then draws its neighbour's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from scenewright.backends.base import Backend, GuidanceMode, PromptEncoding
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import AttentionBias, Edit, RegionMask, Sites, region_token_masks
from scenewright.executor.attention.masks import Box, box_to_tokens
from scenewright.executor.catalogue import BASE_STREAMS, MAX_INTERVAL, bounds, defaults
from scenewright.executor.composition import (
    Region,
    conditional_rows,
    encode_sequence,
    plan_regions,
    sample_with_edits,
)
from scenewright.executor.object_lora import box_loras, object_loras
from scenewright.executor.options import Bound, require_choice
from scenewright.executor.regional.box_noise import (
    CleanPrediction,
    committed_noise,
    fullest_round,
    redraw_rounds,
    redrawn_count,
)
from scenewright.executor.regional.region_pooled import region_pooled, supports_region_pooled, token_regions
from scenewright.executor.sampler import (
    SampleResult,
    SamplerHook,
    SamplingSettings,
    make_generator,
    settings_guided_on,
)
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

# Every option's default, declared once in the catalogue (the authors' where they give one: image
# attention within regions throughout, the base prompt's own image stream).
DEFAULTS = defaults("regional")
# What ``regional:key=value`` may set (checked when the name is parsed).
OPTIONS: dict[str, Bound] = bounds("regional")
# ``recheck_at``: a box whose clean prediction at that share of the steps holds under
# ``recheck_share`` of standing-out tokens gets a fresh noise draw, up to ``recheck_tries`` times.
BOOST_MAP_SIDE = 128  # boxes are drawn at this resolution, then resized to the token grid


@dataclass(frozen=True)
class RegionalPrompts:
    """What regional prompting reads from a plan, derived once per render and passed down: one
    region per instance, the prompt for the space no box covers, and the base pass's prompt."""

    regions: tuple[Region, ...]
    background: str
    base: str

    @classmethod
    def of(cls, backend: Backend, plan: Plan) -> RegionalPrompts:
        """The base pass takes the plan's global prompt, as the authors' does (naming the objects
        instead lost position on the 16x16 toy model: 44% against 56% on the tuning set)."""
        return cls(
            regions=tuple(plan_regions(plan)),
            background=plan.background or backend.defaults.background_prompt,
            base=plan.global_prompt,
        )


def regional_edit(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    base_ratio: float = DEFAULTS.base_ratio,
    inject_fraction: float = DEFAULTS.inject_fraction,
    double_blocks: Sequence[int] | None = None,
    single_blocks: Sequence[int] | None = None,
    image_attention: str = DEFAULTS.image_attention,
    base_stream: str = DEFAULTS.base_stream,
    double_inject_interval: int = 1,
    single_inject_interval: int = 1,
) -> tuple[PromptEncoding, PromptEncoding, RegionMask]:
    """:func:`region_mask_edit` for ``plan``'s prompts, for callers that hold a plan rather than
    its :class:`RegionalPrompts`."""
    return region_mask_edit(
        backend, RegionalPrompts.of(backend, plan), settings, base_ratio=base_ratio,
        inject_fraction=inject_fraction, double_blocks=double_blocks, single_blocks=single_blocks,
        image_attention=image_attention, base_stream=base_stream,
        double_inject_interval=double_inject_interval, single_inject_interval=single_inject_interval,
    )  # fmt: skip


def region_mask_edit(
    backend: Backend,
    prompts: RegionalPrompts,
    settings: SamplingSettings,
    *,
    base_ratio: float = DEFAULTS.base_ratio,
    inject_fraction: float = DEFAULTS.inject_fraction,
    double_blocks: Sequence[int] | None = None,
    single_blocks: Sequence[int] | None = None,
    image_attention: str = DEFAULTS.image_attention,
    base_stream: str = DEFAULTS.base_stream,
    double_inject_interval: int = 1,
    single_inject_interval: int = 1,
) -> tuple[PromptEncoding, PromptEncoding, RegionMask]:
    """The concatenated prompt row, a matching unconditional row, and the region mask edit.

    The mask is on in every ``double_inject_interval``-th double-stream (or SD3 joint) block and
    every ``single_inject_interval``-th single-stream block, counted from the first, as the
    authors' ``*_inject_blocks_interval``; ``double_blocks`` / ``single_blocks`` name blocks
    instead."""
    check_intervals(double_inject_interval, single_inject_interval)
    double_blocks = (
        double_blocks if double_blocks is not None else every(backend, "double", double_inject_interval)
    )
    single_blocks = (
        single_blocks if single_blocks is not None else every(backend, "single", single_inject_interval)
    )
    regions = prompts.regions
    texts = [r.prompt for r in regions] + [prompts.background, prompts.base]
    encoding, negative, spans = encode_sequence(backend, texts, settings.negative_prompt)
    inject = max(1, round(inject_fraction * settings.steps))
    mask = RegionMask(
        text_spans=spans[:-1],
        shapes=[r.box for r in regions] + [None],
        base_span=spans[-1],
        base_ratio=base_ratio,
        sites=Sites.make(double=double_blocks, single=single_blocks, joint=double_blocks, steps=(0, inject)),
        image_attention=image_attention,
        base_stream=base_stream,
    )
    return encoding, negative, mask


def check_intervals(double_inject_interval: int, single_inject_interval: int) -> None:
    """Refuse an interval that is not a whole number of blocks from 1 up, before any work."""
    for name, value in (
        ("double_inject_interval", double_inject_interval),
        ("single_inject_interval", single_inject_interval),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INTERVAL:
            raise InvalidInputError(
                f"regional.{name}", f"{value!r} is not a block interval", f"use 1 to {MAX_INTERVAL}"
            )


def every(backend: Backend, kind: str, interval: int) -> list[int] | None:
    """Block indices ``0, interval, 2 * interval, ...`` of ``kind`` ("double": FLUX double-stream
    or SD3 joint blocks; "single"), or None (all) at interval 1."""
    if interval == 1:
        return None
    kinds = ("single",) if kind == "single" else ("double", "joint")
    count = sum(1 for block in backend.blocks() if block.kind in kinds)
    return list(range(0, count, interval))


def text_boost_edit(
    backend: Backend, encoding: PromptEncoding, mask: RegionMask, settings: SamplingSettings, strength: float
) -> AttentionBias | None:
    """``strength`` added to the logits of each box's image queries on its own prompt's words.

    Only where the region mask is active (same blocks and steps) and only on the conditional
    rows of a CFG batch, so the unconditional prediction is the one plain regional gives.
    """
    if strength <= 0:
        return None
    words = [token for word in encoding.words[0] for token in word.tokens]
    maps: dict[int, torch.Tensor] = {}
    for (start, end), shape in zip(mask.text_spans, mask.shapes, strict=True):
        if shape is None or isinstance(shape, torch.Tensor):
            continue
        box: Box = shape
        spatial = box_to_tokens(box, (BOOST_MAP_SIDE, BOOST_MAP_SIDE)).float() * strength
        maps.update({token: spatial for token in words if start <= token < end})
    if not maps:
        return None
    return AttentionBias(maps=maps, sites=mask.sites, rows=conditional_rows(backend, settings))


def box_settings(
    backend: Backend, settings: SamplingSettings, guidance_steps: str, region_guidance: float
) -> SamplingSettings:
    """The settings of the steps where boxes commit: CFG on every step with ``guidance_steps``
    "all", at ``region_guidance`` when it is above 0 (a CFG model on a run that guides at all:
    the option scales guidance, it never switches it on)."""
    boxed = settings_guided_on(settings, guidance_steps)
    if region_guidance > 0 and backend.guidance_mode is GuidanceMode.CFG and settings.guidance > 1:
        boxed = dataclasses.replace(boxed, guidance=region_guidance)
    return boxed


def regional_phases(
    mask: RegionMask, settings: SamplingSettings, open_image_after: float
) -> list[RegionMask]:
    """The region mask split at ``open_image_after`` of the steps: before it as given, after it
    (until the inject steps end) with image attention open across regions ("all").

    One mask per sampling call, since one call holds one region mask."""
    start, inject = mask.sites.steps if mask.sites.steps else (0, settings.steps)
    opened = min(inject, max(start + 1, round(open_image_after * settings.steps)))
    if opened >= inject or mask.image_attention == "all":
        return [mask]
    before = dataclasses.replace(mask.sites, steps=(start, opened))
    after = dataclasses.replace(mask.sites, steps=(opened, inject))
    return [
        dataclasses.replace(mask, sites=before),
        dataclasses.replace(mask, sites=after, image_attention="all"),
    ]


def mask_boxes(mask: RegionMask) -> list[Box]:
    """The mask's regions that are boxes (not pixel masks, not the background's ``None``)."""
    return [shape for shape in mask.shapes if shape is not None and not isinstance(shape, torch.Tensor)]


def check_pooled(backend: Backend, pooled: str) -> None:
    """Refuse a box's own pooled vector on a model whose blocks cannot take it, before any work."""
    if pooled != "scene" and not supports_region_pooled(backend):
        raise InvalidInputError(
            "regional.pooled",
            f"pooled={pooled} needs a FLUX-class model (double and single blocks), "
            f"not {type(backend.transformer).__name__}",
            "use pooled=scene on this model",
        )


def own_pooled(backend: Backend, regions: Sequence[Region], pooled: str) -> torch.Tensor | None:
    """Each region's own pooled vector, encoded once for a render (None with ``pooled="scene"``,
    which needs none)."""
    if pooled == "scene":
        return None
    check_pooled(backend, pooled)
    return backend.encode_prompts([region.prompt for region in regions]).pooled


@contextmanager
def box_pooled(
    backend: Backend,
    own: torch.Tensor | None,
    encoding: PromptEncoding,
    mask: RegionMask,
    settings: SamplingSettings,
    pooled: str,
) -> Iterator[None]:
    """With ``pooled="box"``, each box's image and text tokens take its own prompt's pooled
    vector (``own``, from :func:`own_pooled`) while open (:mod:`.region_pooled`), in the blocks
    "box_single" names; with "scene" nothing changes."""
    if pooled == "scene":
        yield
        return
    check_pooled(backend, pooled)
    boxes = mask_boxes(mask)
    if len(boxes) != len(mask.shapes) - 1:
        raise InvalidInputError("regional.pooled", "pooled=box needs boxes, not masks", "use pooled=scene")
    assert own is not None, "box_pooled needs own_pooled's vectors"
    text = torch.zeros(encoding.embeds.shape[1], dtype=torch.long)
    for region, (start, end) in enumerate(mask.text_spans[: len(boxes)], start=1):
        text[start:end] = region
    image = token_regions(boxes, backend.token_grid(settings.height, settings.width))
    blocks = "single" if pooled == "box_single" else "all"
    with region_pooled(backend, encoding.pooled, own, image, text, blocks=blocks):
        yield


def render_regional(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    base_ratio: float = DEFAULTS.base_ratio,
    inject_fraction: float = DEFAULTS.inject_fraction,
    image_attention: str = DEFAULTS.image_attention,
    text_boost: float = DEFAULTS.text_boost,
    open_image_after: float = DEFAULTS.open_image_after,
    guidance_steps: str = DEFAULTS.guidance_steps,
    region_guidance: float = DEFAULTS.region_guidance,
    noise_tries: int = DEFAULTS.noise_tries,
    pooled: str = DEFAULTS.pooled,
    pooled_from: float = DEFAULTS.pooled_from,
    recheck_at: float = DEFAULTS.recheck_at,
    recheck_share: float = DEFAULTS.recheck_share,
    recheck_tries: int = DEFAULTS.recheck_tries,
    base_stream: str = DEFAULTS.base_stream,
    double_inject_interval: int = DEFAULTS.double_inject_interval,
    single_inject_interval: int = DEFAULTS.single_inject_interval,
) -> RenderResult:
    """Render ``plan`` with every instance drawn by its own prompt inside its own box."""
    require_choice("regional.base_stream", base_stream, BASE_STREAMS)
    check_intervals(double_inject_interval, single_inject_interval)
    prompts = RegionalPrompts.of(backend, plan)
    if not prompts.regions:
        fallback = render_vanilla(backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
        fallback.report["note"] = "no boxes in the plan: rendered without regions"
        return fallback
    check_pooled(backend, pooled)
    own = own_pooled(backend, prompts.regions, pooled)
    boxed_settings = box_settings(backend, settings, guidance_steps, region_guidance)
    encoding, negative, mask = region_mask_edit(
        backend, prompts, settings, base_ratio=base_ratio, inject_fraction=inject_fraction,
        image_attention=image_attention, base_stream=base_stream,
        double_inject_interval=double_inject_interval, single_inject_interval=single_inject_interval,
    )  # fmt: skip
    inject = mask.sites.steps[1] if mask.sites.steps else settings.steps
    phases = regional_phases(mask, settings, open_image_after)
    latents: torch.Tensor | None = None
    # The boxes take their own pooled vectors from ``pooled_from`` of the steps: before it the
    # scene's vector, which names every object, helps each box commit to drawing something.
    switch = round(pooled_from * settings.steps) if pooled != "scene" else 0
    boxes = mask_boxes(mask)
    if noise_tries > 1:
        first = phases[0]
        boost = text_boost_edit(backend, encoding, first, boxed_settings, text_boost)
        with (
            box_pooled(backend, own, encoding, mask, settings, pooled if switch == 0 else "scene"),
            object_loras(backend, plan, encoding, mask, settings),
        ):
            latents = committed_noise(
                backend, encoding, negative, boxed_settings, [first, *([boost] if boost else []), *edits],
                boxes, int(noise_tries),
            )  # fmt: skip

    def run(
        start_latents: torch.Tensor | None, first: int, last: int, watch: Sequence[SamplerHook] = ()
    ) -> SampleResult:
        """Steps ``first`` to ``last`` of the render: the regional phases, then the plain finish."""
        result: SampleResult | None = None
        latents = start_latents
        for phase in phases:
            start, end = phase.sites.steps or (0, inject)
            boost = text_boost_edit(backend, encoding, phase, boxed_settings, text_boost)
            for piece_start, piece_end, piece_pooled in (
                (max(first, start), min(end, switch, last), "scene"),
                (max(first, start, switch), min(end, last), pooled),
            ):
                if piece_start >= piece_end:
                    continue
                with (
                    box_pooled(backend, own, encoding, mask, settings, piece_pooled),
                    object_loras(backend, plan, encoding, mask, settings),
                ):
                    result = sample_with_edits(
                        backend, encoding, boxed_settings, [phase, *([boost] if boost else []), *edits],
                        negative=negative, hooks=[*hooks, *watch], progress=progress, latents=latents,
                        start_step=piece_start, max_steps=piece_end, decode=piece_end >= settings.steps,
                    )  # fmt: skip
                latents = result.latents
        if max(first, inject) < last:
            # After the inject steps image and base tokens attend only to [base; image]: the
            # regional prompts no longer reach the image, so dropping them from the sequence
            # changes nothing but the cost, which returns to vanilla's.
            scene = backend.encode_prompts([prompts.base])
            with box_loras(backend, plan, scene, settings):
                result = sample_with_edits(
                    backend, scene, settings, edits, hooks=[*hooks, *watch], latents=latents,
                    start_step=max(first, inject), max_steps=last, progress=progress, decode=last >= settings.steps,
                )  # fmt: skip
        assert result is not None
        return result

    check = round(recheck_at * settings.steps) if recheck_at > 0 and boxes else 0
    redraws = 0
    if 0 < check < settings.steps:

        def first_steps(noise: torch.Tensor) -> tuple[SampleResult, torch.Tensor]:
            prediction = CleanPrediction()
            result = run(noise, 0, check, watch=[prediction])
            assert prediction.predicted is not None
            return result, prediction.predicted

        if latents is None:
            latents = backend.prepare_noise(1, settings.height, settings.width, make_generator(settings.seed))
        grid = backend.token_grid(settings.height, settings.width)
        masks = region_token_masks(list(boxes), grid).to(latents.device)
        rounds = redraw_rounds(
            backend, settings, masks, latents, first_steps, recheck_share, int(recheck_tries),
            first_draw=int(noise_tries),
        )  # fmt: skip
        checked, redraws = fullest_round(rounds).result, redrawn_count(rounds)
        result = run(checked.latents, check, settings.steps)
    else:
        result = run(latents, 0, settings.steps)
    image = backend.to_pil(result.images)[0]
    report = {
        "base_stream": base_stream,
        "double_inject_interval": double_inject_interval,
        "single_inject_interval": single_inject_interval,
        "base_ratio": base_ratio,
        "image_attention": image_attention,
        "text_boost": text_boost,
        "inject_steps": mask.sites.steps,
        "phases": [(p.image_attention, p.sites.steps) for p in phases],
        "guidance_steps": guidance_steps,
        "region_guidance": boxed_settings.guidance,
        "noise_tries": noise_tries,
        "pooled": pooled,
        "pooled_from": pooled_from,
        "recheck_at": recheck_at,
        "boxes_redrawn": redraws,
        "regions": len(mask.shapes) - 1,
    }
    return RenderResult(
        image=image, plan=plan, settings=settings, strategy="regional", sample=result, report=report
    )
