"""``auto``: pick the strategy a plan needs, and say why (the reason goes into the metadata)."""

from __future__ import annotations

from collections.abc import Sequence

from scenewright.backends.base import Backend
from scenewright.executor.attention import Edit
from scenewright.executor.numina import render_numina
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.stitch import render_stitch
from scenewright.executor.taca import render_taca
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

# What ``auto`` may choose; imported directly (not through the registry, which lists auto itself).
CHOICES = {"vanilla": render_vanilla, "stitch": render_stitch, "numina": render_numina, "taca": render_taca}


def choose_strategy(plan: Plan) -> tuple[str, str]:
    """The strategy for ``plan`` and a one-line reason."""
    boxed = [o for o in plan.objects if o.boxes]
    counted = [o for o in plan.objects if o.count > 1]
    if not plan.objects:
        return "vanilla", "the plan names no objects to place or count"
    if boxed and (len(plan.objects) > 1 or plan.relations or counted):
        # Stitch over regional and NUMINA wherever there are boxes: on the toy-world benchmark it
        # places and counts objects more often than either (docs/benchmarks.md).
        first = plan.objects[0]
        what = f"{len(plan.objects)} objects" if len(plan.objects) > 1 else f"{first.name} x{first.count}"
        return "stitch", f"{what} with boxes: each object drawn apart, then put in its boxes"
    if len(plan.objects) == 1 and counted:
        return (
            "numina",
            f"one object with a count ({counted[0].count} {counted[0].name}) and no boxes: count layout",
        )
    if counted:
        return "numina", "objects with counts but no layout: count layout"
    return "taca", "a single object: stronger text attention early on"


def render_auto(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
) -> RenderResult:
    name, why = choose_strategy(plan)
    result = CHOICES[name](backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
    result.report["auto"] = {"chose": name, "why": why}
    result.strategy = f"auto:{name}"
    return result
