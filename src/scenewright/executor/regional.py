"""Regional prompting (Regional-Prompting-FLUX): each instance's prompt bound to its box.

The text sequence is ``[instance 1; ...; instance N; background; base]``; for the first
``inject_fraction`` of the steps each region's text and image tokens only see each other, the
background prompt covers what no box does, and the base (global) prompt's pass is blended in with
``base_ratio``. After that, plain attention with the base prompt finishes the image.
"""

from __future__ import annotations

from collections.abc import Sequence

from scenewright.backends.base import Backend, PromptEncoding
from scenewright.executor.attention import Edit, RegionMask, Sites
from scenewright.executor.composition import encode_sequence, plan_regions, sample_with_edits
from scenewright.executor.options import Bound, Choice, Range
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

DEFAULT_BASE_RATIO = 0.3
DEFAULT_INJECT_FRACTION = 0.4
# What ``regional:key=value`` may set (checked when the name is parsed).
OPTIONS: dict[str, Bound] = {
    "base_ratio": Range(0.0, 1.0),
    "inject_fraction": Range(0.0, 1.0),
    "image_attention": Choice(("region", "all")),
}
DEFAULT_IMAGE_ATTENTION = "region"  # or "all": see RegionMask.image_attention


def regional_edit(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    base_ratio: float = DEFAULT_BASE_RATIO,
    inject_fraction: float = DEFAULT_INJECT_FRACTION,
    double_blocks: Sequence[int] | None = None,
    single_blocks: Sequence[int] | None = None,
    image_attention: str = DEFAULT_IMAGE_ATTENTION,
) -> tuple[PromptEncoding, PromptEncoding, RegionMask]:
    """The concatenated prompt row, a matching unconditional row, and the region mask edit."""
    regions = plan_regions(plan)
    prompts = [r.prompt for r in regions] + [
        plan.background or backend.defaults.background_prompt,
        plan.global_prompt,
    ]
    encoding, negative, spans = encode_sequence(backend, prompts, settings.negative_prompt)
    inject = max(1, round(inject_fraction * settings.steps))
    mask = RegionMask(
        text_spans=spans[:-1],
        shapes=[r.box for r in regions] + [None],
        base_span=spans[-1],
        base_ratio=base_ratio,
        sites=Sites.make(double=double_blocks, single=single_blocks, steps=(0, inject)),
        image_attention=image_attention,
    )
    return encoding, negative, mask


def render_regional(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    base_ratio: float = DEFAULT_BASE_RATIO,
    inject_fraction: float = DEFAULT_INJECT_FRACTION,
    image_attention: str = DEFAULT_IMAGE_ATTENTION,
) -> RenderResult:
    """Render ``plan`` with every instance drawn by its own prompt inside its own box."""
    if not plan_regions(plan):
        fallback = render_vanilla(backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
        fallback.report["note"] = "no boxes in the plan: rendered without regions"
        return fallback
    encoding, negative, mask = regional_edit(
        backend, plan, settings, base_ratio=base_ratio, inject_fraction=inject_fraction,
        image_attention=image_attention,
    )  # fmt: skip
    inject = mask.sites.steps[1] if mask.sites.steps else settings.steps
    result = sample_with_edits(
        backend, encoding, settings, [mask, *edits], negative=negative, hooks=hooks, progress=progress,
        max_steps=inject, decode=inject >= settings.steps,
    )  # fmt: skip
    if inject < settings.steps:
        # After the inject steps image and base tokens attend only to [base; image]: the regional
        # prompts no longer reach the image, so dropping them from the sequence changes nothing
        # but the cost, which returns to vanilla's.
        result = sample_with_edits(
            backend, backend.encode_prompts([plan.global_prompt]), settings, edits, hooks=hooks,
            latents=result.latents, start_step=inject, progress=progress,
        )  # fmt: skip
    image = backend.to_pil(result.images)[0]
    report = {
        "base_ratio": base_ratio,
        "image_attention": image_attention,
        "inject_steps": mask.sites.steps,
        "regions": len(mask.shapes) - 1,
    }
    return RenderResult(
        image=image, plan=plan, settings=settings, strategy="regional", sample=result, report=report
    )
