"""The strategies by name: each takes a backend, a plan and settings and returns a RenderResult."""

from __future__ import annotations

from collections.abc import Callable

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

Strategy = Callable[..., RenderResult]

STRATEGIES: dict[str, Strategy] = {
    "vanilla": render_vanilla,
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise InvalidInputError(
            "strategy", f"unknown strategy '{name}'", f"use one of {', '.join(STRATEGIES)}"
        )
    return STRATEGIES[name]


def run_strategy(
    name: str, backend: Backend, plan: Plan, settings: SamplingSettings, *, progress: bool = False
) -> RenderResult:
    return get_strategy(name)(backend, plan, settings, progress=progress)
