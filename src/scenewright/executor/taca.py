"""TACA: a higher temperature on image-query x text-key logits in the early steps.

Usable alone (``taca``: vanilla plus the temperature) or on top of any strategy (``regional+taca``).
The defaults are the authors' public code: gamma 1.2 on the first ``early_steps`` = 3 steps at any
step count. ``early_fraction``, when given, takes a share of the steps instead (the embedded toy
models are tuned with it, their ``strategy_defaults.json``; docs/parity.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scenewright.backends.base import Backend
from scenewright.executor.attention import Edit, Temperature, taca_gamma
from scenewright.executor.catalogue import bounds, defaults
from scenewright.executor.options import Bound
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

# Every option's default, declared once in the catalogue.
DEFAULTS = defaults("taca")

# TACA's public code (Vchitect/TACA, infer/pipeline_taca_flux.py): gamma 1.2 while step < 3.
DEFAULT_GAMMA = DEFAULTS.gamma
DEFAULT_EARLY_STEPS = DEFAULTS.early_steps
# Negative: no share, the fixed count applies.
DEFAULT_EARLY_FRACTION = DEFAULTS.early_fraction
# What ``taca:key=value`` may set: a temperature below 0.5 (gamma above 2) turns outlines
# cartoonish (TACA's paper), and a gamma at or below 0 inverts attention.
OPTIONS: dict[str, Bound] = bounds("taca")


def taca_edit(
    gamma: float = DEFAULT_GAMMA,
    early_steps: int = DEFAULT_EARLY_STEPS,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> Temperature:
    """The temperature edit: ``gamma`` on the first ``early_steps`` steps, or on the first
    ``early_fraction`` of them when that is not negative."""
    OPTIONS["early_steps"].check("taca", "early_steps", early_steps)
    share = early_fraction >= 0
    return Temperature(
        schedule=taca_gamma(gamma, early_fraction if share else 0.0, None if share else int(early_steps))
    )


def schedule_report(gamma: float, early_steps: int, early_fraction: float) -> dict[str, Any]:
    """What a render reports of its temperature schedule."""
    if early_fraction >= 0:
        return {"gamma": gamma, "early_fraction": early_fraction}
    return {"gamma": gamma, "early_steps": early_steps}


def render_taca(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    gamma: float = DEFAULT_GAMMA,
    early_steps: int = DEFAULT_EARLY_STEPS,
    early_fraction: float = DEFAULT_EARLY_FRACTION,
) -> RenderResult:
    """Vanilla with the temperature on its early steps, under the model's own guidance (CFG on
    the toy models' unguided early steps measured worse, docs/benchmarks.md)."""
    result = render_vanilla(
        backend,
        plan,
        settings,
        hooks=hooks,
        edits=[taca_edit(gamma, early_steps, early_fraction), *edits],
        progress=progress,
    )
    result.strategy = "taca"
    result.report.update(schedule_report(gamma, early_steps, early_fraction))
    return result
