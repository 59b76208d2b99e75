"""``auto``: pick the strategy a plan needs by measurement, and say why.

The choice comes from a table the toy-world benchmark wrote (``scenewright bench auto-table``):
for each kind of plan (one object, a count, several objects, a layout with relations, counts and
a layout together) the strategies ranked by how often the exact evaluator passed them, ties to
the cheaper one (within 5%, to the simpler). ``auto`` takes the best-ranked strategy the plan can run (the box-bound ones need
boxes). A model ships its own table beside its weights (``Backend.auto_table``); a model without
one (FLUX, SD3) uses the embedded default model's table, and the reason says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scenewright.backends.base import Backend
from scenewright.backends.tiny import EMBEDDED_MODEL_DIR, read_auto_table
from scenewright.executor.attention import Edit
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.vanilla import RenderResult
from scenewright.planner.plan import Plan

# The benchmark sets a plan can be like; ``plan_kind`` maps a plan to one of them.
PLAN_KINDS = ("single", "counting", "binding", "position", "complex")
# Strategies that bind prompts to boxes: they cannot run a plan without boxes.
NEEDS_BOXES = ("regional", "stitch")
FALLBACK = "vanilla"

RunStrategy = Callable[..., RenderResult]


def plan_kind(plan: Plan) -> str | None:
    """The benchmark set ``plan`` is most like, or None for a plan without objects."""
    objects = plan.objects
    if not objects:
        return None
    if len(objects) == 1:
        return "counting" if objects[0].count > 1 else "single"
    if any(o.count > 1 for o in objects):
        return "complex"
    return "position" if plan.relations else "binding"


def _needs_boxes(strategy: str) -> bool:
    return strategy.partition(":")[0].partition("+")[0] in NEEDS_BOXES


@functools.cache
def _embedded_table() -> dict[str, Any]:
    """The default model's table, read once per process rather than once per render."""
    return read_auto_table(EMBEDDED_MODEL_DIR)


def table_for(backend: Backend) -> dict[str, Any]:
    """The backend's own table, else the embedded default model's."""
    return dict(backend.auto_table or _embedded_table())


def choose_strategy(plan: Plan, table: Mapping[str, Any]) -> tuple[str, str]:
    """The strategy for ``plan`` from ``table`` and a one-line reason with the measured figure."""
    kind = plan_kind(plan)
    if kind is None:
        return FALLBACK, "the plan names no objects to place or count"
    boxed = all(o.boxes for o in plan.objects)
    ranking = table.get("kinds", {}).get(kind, {}).get("ranking", [])
    where = table.get("measured_on", "?")
    for entry in ranking:
        strategy = str(entry["strategy"])
        if _needs_boxes(strategy) and not boxed:
            continue
        figure = f"passed {entry['passed']:.0%} of {kind} cases on {where}"
        skipped = "" if ranking[0] is entry else " (better-ranked ones need boxes)"
        return strategy, f"best measured for a {kind} plan: {figure}{skipped}"
    return FALLBACK, f"no measured strategy for a {kind} plan on {where}"


def render_auto(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    run_chosen: RunStrategy,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
) -> RenderResult:
    """Render with the measured best strategy. ``run_chosen`` is the registry's runner (it applies
    the model's tuned options and the ``+taca`` suffix); it is handed in rather than imported
    because the registry lists ``auto`` itself."""
    name, why = choose_strategy(plan, table_for(backend))
    result = run_chosen(name, backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
    result.report["auto"] = {"chose": name, "why": why, "kind": plan_kind(plan)}
    result.strategy = f"auto:{name}"
    return result
