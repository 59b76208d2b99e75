"""TACA: a higher temperature on image-query x text-key logits in the early steps.

Usable alone (``taca``: vanilla plus the temperature) or on top of any strategy (``regional+taca``).
"""

from __future__ import annotations

from collections.abc import Sequence

from scenewright.backends.base import Backend
from scenewright.executor.attention import Edit, Temperature, taca_gamma
from scenewright.executor.options import Bound, Range
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

# Tuned on the toy-world benchmark: 1.1 > 1.2 > 1.5 on binding (docs/benchmarks.md).
DEFAULT_GAMMA = 1.1
DEFAULT_EARLY_FRACTION = 0.1
# What ``taca:key=value`` may set: a temperature below 0.5 (gamma above 2) turns outlines
# cartoonish (TACA's paper), and a gamma at or below 0 inverts attention.
OPTIONS: dict[str, Bound] = {"gamma": Range(0.5, 2.0), "early_fraction": Range(0.0, 1.0)}


def taca_edit(gamma: float = DEFAULT_GAMMA, early_fraction: float = DEFAULT_EARLY_FRACTION) -> Temperature:
    """The temperature edit: ``gamma`` on the first ``early_fraction`` of steps."""
    return Temperature(schedule=taca_gamma(gamma, early_fraction))


def render_taca(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    gamma: float = DEFAULT_GAMMA,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> RenderResult:
    """Vanilla with the temperature on its early steps, under the model's own guidance (CFG on
    the toy models' unguided early steps measured worse, docs/benchmarks.md)."""
    result = render_vanilla(
        backend,
        plan,
        settings,
        hooks=hooks,
        edits=[taca_edit(gamma, early_fraction), *edits],
        progress=progress,
    )
    result.strategy = "taca"
    result.report.update(gamma=gamma, early_fraction=early_fraction)
    return result
