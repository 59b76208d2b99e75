"""NUMINA: read a short reference pass, lay out exactly the requested instances, regenerate.

1. Reference pass: the global prompt for the first ``reference_fraction`` of the steps, capturing
   each counted noun's text-to-image attention and the image tokens' features at a middle block.
2. Count layout (planner.count_layout): instances clustered from those maps, then dropped or
   copied until each object has its count.
3. Regeneration from the same seed with an additive pre-softmax bias on the noun's tokens
   (conditional branch only): ``+added_strength`` on added instances, ``removed_strength`` on
   removed ones, scaled by NUMINA's delta(t), which fades to zero after about half the steps.
   ``bias_words="object"`` (ours) also biases the object's attribute words.

That is ``pipeline="ours"``; ``pipeline="paper"`` (the default) runs the authors' pipeline
instead (:mod:`.numina_paper`).

The regeneration starts again from the first step, so ``reference_fraction`` only decides how
late the instances are read: a later read counts better and costs more (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from scenewright.arrays import to_numpy
from scenewright.backends.base import Backend, PromptEncoding
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import (
    AttentionBias,
    CaptureMaps,
    Edit,
    Sites,
    attention_engine,
    numina_delta,
)
from scenewright.executor.catalogue import BIAS_WORDS, PIPELINES, bounds, defaults
from scenewright.executor.composition import conditional_rows, noun_tokens, sample_with_edits
from scenewright.executor.numina.paper import render_paper
from scenewright.executor.options import Bound, require_choice
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext, sample
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.count_layout import build_count_layout
from scenewright.planner.plan import Plan, PlanObject

# Every option's default, declared once in the catalogue.
DEFAULTS = defaults("numina")

DEFAULT_REFERENCE_FRACTION = DEFAULTS.reference_fraction
# NUMINA's bias strengths (its public code): +0.8 on added instances, -10 on removed ones. They
# are options because a model's logit scale decides what 0.8 does (a model's tuned values go in
# its strategy_defaults.json).
ADDED_STRENGTH = DEFAULTS.added_strength
REMOVED_STRENGTH = DEFAULTS.removed_strength
# Which words the bias goes on: "noun" (the paper) or "object" (the noun and its attributes,
# "red stars": on a model that draws colour from the colour word, a bias on the noun alone adds
# or removes little).
# "paper": the authors' head choice, count layout and bias (executor/numina/paper.py); "ours":
# our layout (planner/count_layout.py), tuned strengths and bias words, the 0.26 delta cut.
# The options only our pipeline reads, at their defaults.
OURS_ONLY = {
    "reference_fraction": DEFAULT_REFERENCE_FRACTION,
    "added_strength": ADDED_STRENGTH,
    "removed_strength": REMOVED_STRENGTH,
    "bias_words": DEFAULTS.bias_words,
}
# What ``numina:key=value`` may set (checked when the name is parsed).
OPTIONS: dict[str, Bound] = bounds("numina")


class _BlockFeatures(SamplerHook):
    """Keeps the image-token hidden states leaving one block at one step."""

    def __init__(self, kind: str, index: int, step: int) -> None:
        self.kind, self.index, self.step = kind, index, step
        self.features: torch.Tensor | None = None

    def after_block(self, ctx: StepContext, block: Any, output: Any) -> None:
        if ctx.step == self.step and block.kind == self.kind and block.index == self.index:
            # Dual-stream blocks return (text, image); a single-stream one (Z-Image) one sequence,
            # whose first tokens are the image's (cut to the grid by the caller).
            hidden = output[1] if isinstance(output, tuple) else output
            self.features = hidden.detach().float().clone()
        return None


def _middle_block(backend: Backend) -> tuple[str, int]:
    blocks = backend.blocks()
    doubles = [b for b in blocks if b.kind in ("double", "joint")]
    chosen = doubles[len(doubles) // 2] if doubles else blocks[len(blocks) // 2]
    return chosen.kind, chosen.index


def bias_tokens(encoding: PromptEncoding, obj: PlanObject, nouns: list[int], words: str) -> list[int]:
    """The tokens NUMINA's bias goes on: the noun's, or with ``words="object"`` also those of its
    attributes where they stand with it in the prompt ("red" in "three red stars")."""
    if words == "noun" or not obj.attributes:
        return nouns
    return sorted(set(nouns) | set(noun_tokens(encoding, 0, " ".join([*obj.attributes, obj.name]))))


def render_numina(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    reference_fraction: float = DEFAULT_REFERENCE_FRACTION,
    added_strength: float = ADDED_STRENGTH,
    removed_strength: float = REMOVED_STRENGTH,
    bias_words: str = DEFAULTS.bias_words,
    pipeline: str = DEFAULTS.pipeline,
) -> RenderResult:
    """Render ``plan`` with each object's instance count steered to what the plan asks.

    ``pipeline="paper"`` follows the authors' code (their constants stand, so the options of
    ours are refused with it); ``pipeline="ours"`` uses them."""
    require_choice("pipeline", pipeline, PIPELINES)
    given = {"reference_fraction": reference_fraction, "added_strength": added_strength,
             "removed_strength": removed_strength, "bias_words": bias_words}  # fmt: skip
    changed = [key for key, value in given.items() if value != OURS_ONLY[key]]
    if pipeline == "paper" and changed:
        raise InvalidInputError(
            changed[0], "applies to NUMINA's pipeline=ours only", "add pipeline=ours or leave it out"
        )
    require_choice("bias_words", bias_words, BIAS_WORDS)
    encoding = backend.encode_prompts([plan.global_prompt])
    targets = [(i, obj, noun_tokens(encoding, 0, obj.name)) for i, obj in enumerate(plan.objects)]
    targets = [(i, obj, tokens) for i, obj, tokens in targets if tokens]
    if not targets:
        fallback = render_vanilla(backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
        fallback.report["note"] = "no counted noun found in the prompt: rendered without count layout"
        return fallback
    if pipeline == "paper":
        return render_paper(
            backend, plan, settings, encoding, targets, hooks=hooks, edits=edits, progress=progress
        )

    reference_steps = max(1, round(reference_fraction * settings.steps))
    read_step = reference_steps - 1
    kind, index = _middle_block(backend)
    rows = conditional_rows(backend, settings)
    captures = [
        CaptureMaps(tokens=tokens, sites=Sites.make(steps=(read_step, read_step + 1)))
        for _, _, tokens in targets
    ]
    features = _BlockFeatures(kind, index, read_step)
    with attention_engine(backend, captures) as engine:
        reference = sample(
            backend,
            encoding,
            settings,
            hooks=[engine, features, *hooks],
            progress=progress,
            decode=False,
            max_steps=reference_steps,
        )
    if features.features is None:
        raise RuntimeError("the reference pass did not reach the feature block")
    grid = backend.token_grid(settings.height, settings.width)
    feature_rows = to_numpy(features.features[rows[0]][: grid[0] * grid[1]])

    bias_maps: dict[int, torch.Tensor] = {}
    layouts: dict[str, Any] = {}
    for (i, obj, tokens), capture in zip(targets, captures, strict=True):
        cross = to_numpy(capture.maps()[rows[0]].mean(dim=0))  # (rows, cols)
        layout = build_count_layout(feature_rows, cross, obj.count)
        spatial = np.zeros(grid, dtype=np.float32)
        for instance in layout.instances:
            if instance.origin == "added":
                spatial[np.asarray(instance.mask, dtype=bool)] += added_strength
        for instance in layout.removed:
            spatial[np.asarray(instance.mask, dtype=bool)] += removed_strength
        layouts[f"{i}:{obj.name}"] = {
            "found": layout.found,
            "added": sum(inst.origin == "added" for inst in layout.instances),
            "removed": len(layout.removed),
        }
        if spatial.any():
            for token in bias_tokens(encoding, obj, tokens, bias_words):
                bias_maps[token] = bias_maps.get(token, torch.zeros(grid)) + torch.from_numpy(spatial)

    bias = AttentionBias(maps=bias_maps, schedule=numina_delta, rows=rows)
    if bias_maps or edits:
        # The bias acts from the first step, and other strategies' edits (numina+taca) did not
        # run in the reference pass: the image is drawn again from the same noise.
        active_edits = [bias, *edits] if bias_maps else list(edits)
        result = sample_with_edits(backend, encoding, settings, active_edits, hooks=hooks, progress=progress)
    else:
        # Every count is already what the reference pass shows: that pass is vanilla's first
        # steps, so finishing it gives vanilla's image at vanilla's cost.
        result = sample(
            backend, encoding, settings, hooks=hooks, progress=progress, latents=reference.latents,
            start_step=reference_steps,
        )  # fmt: skip
    image = backend.to_pil(result.images)[0]
    report = {
        "reference_steps": reference_steps,
        "continued": not bias_maps and not edits,
        "feature_block": f"{kind}{index}",
        "layouts": layouts,
        "strengths": {"added": added_strength, "removed": removed_strength},
        "bias_words": bias_words,
    }
    return RenderResult(
        image=image, plan=plan, settings=settings, strategy="numina", sample=result, report=report
    )
