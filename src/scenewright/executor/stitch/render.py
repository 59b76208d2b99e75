"""Stitch's two phases end to end: the object pass chosen, the switch, the hold and the finish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit, Sites
from scenewright.executor.catalogue import (
    HOLD_IMAGE_ATTENTION,
    NOISE_SCORES,
    OBJECT_PASSES,
    SCENE_PROMPTS,
    bounds,
    defaults,
)
from scenewright.executor.composition import plan_regions, sample_with_edits, scene_prompt
from scenewright.executor.object_lora import object_loras
from scenewright.executor.options import Bound, require_choice
from scenewright.executor.regional import (
    box_settings,
    check_pooled,
    regional_edit,
    text_boost_edit,
)
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.stitch.box_pass import box_pass_tokens
from scenewright.executor.stitch.free_pass import free_object_tokens
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

# Every option's default, declared once in the catalogue.
DEFAULTS = defaults("stitch")

# Phase 1's share of the steps when ``object_fraction`` is left negative: per object pass, each
# the best of a sweep on the toy-world benchmark (docs/benchmarks.md). The free pass must switch
# later: before half the steps the global prompt still re-binds the moved objects' colours.
BOX_OBJECT_FRACTION = 0.2
FREE_OBJECT_FRACTION = 0.5
FINISH_PROMPTS = SCENE_PROMPTS
# The free pass's object rows on a coarser schedule: this many of them reach the switch's noise
# level (three-object cases of the benchmark: 1.13x vanilla's time, against 1.77x on the full
# schedule, at the same accuracy; 5 steps lost complex cases).
OBJECT_STEPS = 6
# "auto" takes the free pass on token grids at most this many tokens a side: there a box is two or
# three tokens wide and a model cannot draw a whole object inside it alone (measured on the
# embedded model, docs/benchmarks.md); on FLUX and SD3 grids (64 and more) the paper's box pass.
FREE_PASS_MAX_GRID = 16
# The paper's cut-out (``cutout_kernel``): the tokens holding 95% of the head's mass, max-pooled
# with a 5 x 5 kernel. The embedded models grow it by one token (3 x 3, their preset).
# What ``stitch:key=value`` may set (checked when the name is parsed); a negative object_fraction
# takes the pass's own.
OPTIONS: dict[str, Bound] = bounds("stitch")


def finish_prompt_text(backend: Backend, plan: Plan, finish_prompt: str) -> str:
    """Phase 2's prompt (see ``scene_prompt``; naming the objects took position 80% -> 92% on
    the embedded model's benchmark, docs/benchmarks.md)."""
    return scene_prompt(backend, plan, finish_prompt)


def render_stitch(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    object_fraction: float = DEFAULTS.object_fraction,
    keep_mass: float = DEFAULTS.keep_mass,
    hold_fraction: float = DEFAULTS.hold_fraction,
    image_attention: str = DEFAULTS.image_attention,
    object_pass: str = DEFAULTS.object_pass,
    fill: float = DEFAULTS.fill,
    finish_prompt: str = DEFAULTS.finish_prompt,
    text_boost: float = DEFAULTS.text_boost,
    guidance_steps: str = DEFAULTS.guidance_steps,
    hold_image_attention: str = DEFAULTS.hold_image_attention,
    noise_tries: int = DEFAULTS.noise_tries,
    pooled: str = DEFAULTS.pooled,
    seam_fraction: float = DEFAULTS.seam_fraction,
    noise_score: str = DEFAULTS.noise_score,
    canvas_fraction: float = DEFAULTS.canvas_fraction,
    borrow_share: float = DEFAULTS.borrow_share,
    cutout_kernel: int = DEFAULTS.cutout_kernel,
) -> RenderResult:
    """Render ``plan`` in two phases; ``object_pass`` is "box" (the paper's: objects drawn in
    their boxes), "free" (drawn anywhere, then moved into their boxes) or "auto" (free on coarse
    token grids, box elsewhere; the report says which ran). The box pass takes regional's
    ``image_attention``, ``text_boost``, ``guidance_steps``, ``noise_tries`` and ``pooled`` (see
    executor.regional; the box pass's own pooled vector is the background prompt's), and
    ``seam_fraction`` (see ``seam_tokens``) and ``noise_score`` (how a box's noise draw is scored, ``box_noise.box_scores``): a model that
    skips CFG at high noise (the toy models) would otherwise draw its boxes unguided, since the
    object pass is exactly those first steps.
    The hold steps take them too (but the noise and the pooled vectors), with
    ``hold_image_attention``."""
    if cutout_kernel < 1 or cutout_kernel % 2 == 0:
        raise InvalidInputError(
            "cutout_kernel", f"{cutout_kernel} is not an odd size", "use 3 (ours) or 5 (the paper's)"
        )
    object_settings = box_settings(backend, settings, guidance_steps, 0.0)
    check_pooled(backend, pooled)
    require_choice("noise_score", noise_score, NOISE_SCORES)
    require_choice("object_pass", object_pass, OBJECT_PASSES)
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
    background_prompt = plan.background or backend.defaults.background_prompt
    finish_hooks = list(hooks)
    if object_pass == "box":
        tokens, pasted_tokens, found, seam_hooks = box_pass_tokens(
            backend, plan, settings, object_settings, switch, background_prompt, edits, hooks, progress,
            keep_mass=keep_mass, image_attention=image_attention, text_boost=text_boost,
            noise_tries=int(noise_tries), pooled=pooled, seam_fraction=seam_fraction,
            noise_score=noise_score, canvas_fraction=canvas_fraction, borrow_share=borrow_share,
            cutout_kernel=int(cutout_kernel),
        )  # fmt: skip
        finish_hooks = [*hooks, *seam_hooks]
    else:
        tokens, pasted_tokens, found = free_object_tokens(
            backend, plan, settings, switch, keep_mass, background_prompt, edits, hooks, progress,
            fill=fill, object_steps=OBJECT_STEPS,
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
        with object_loras(backend, plan, held, region, settings):
            start = sample_with_edits(
                backend, held, object_settings, [region, *([boost] if boost else []), *edits],
                negative=held_negative, hooks=finish_hooks, latents=start, start_step=switch,
                max_steps=switch + hold, decode=False, progress=progress,
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
