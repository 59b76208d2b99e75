"""The strategies by name. Each takes a backend, a plan and settings and returns a RenderResult.

``A+taca`` runs strategy ``A`` with TACA's temperature added to its attention edits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit
from scenewright.executor.auto import render_auto
from scenewright.executor.numina import render_numina
from scenewright.executor.refine import render_refine
from scenewright.executor.regional import render_regional
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.stitch import render_stitch
from scenewright.executor.taca import render_taca, taca_edit
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

Strategy = Callable[..., RenderResult]

STRATEGIES: dict[str, Strategy] = {
    "vanilla": render_vanilla,
    "regional": render_regional,
    "taca": render_taca,
    "numina": render_numina,
    "stitch": render_stitch,
    "refine": render_refine,
    "auto": render_auto,
}
# Strategies whose attention edits TACA can be layered on.
TACA_COMPOSABLE = ("regional", "numina", "stitch")


def strategy_names() -> list[str]:
    return [*STRATEGIES, *(f"{name}+taca" for name in TACA_COMPOSABLE)]


def get_strategy(name: str) -> tuple[Strategy, list[Edit]]:
    """The function for ``name`` and the extra edits its suffix asks for."""
    base, _, extra = name.partition("+")
    if base not in STRATEGIES or extra not in ("", "taca") or (extra and base not in TACA_COMPOSABLE):
        raise InvalidInputError(
            "strategy", f"unknown strategy '{name}'", f"use one of {', '.join(strategy_names())}"
        )
    return STRATEGIES[base], ([taca_edit()] if extra else [])


def run_strategy(
    name: str,
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    progress: bool = False,
) -> RenderResult:
    function, edits = get_strategy(name)
    if edits:
        result = function(backend, plan, settings, hooks=hooks, edits=edits, progress=progress)
        result.strategy = name
        return result
    return function(backend, plan, settings, hooks=hooks, progress=progress)
