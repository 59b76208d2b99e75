"""TACA: a higher temperature on image-query x text-key logits in the early steps.

Usable alone (``taca``: vanilla plus the temperature) or on top of any strategy (``regional+taca``).
Two step rules (``mode``): ``paper``, the authors' public code (gamma 1.2 on the first 3 steps at
any step count; the default, used on FLUX.1 and SD3.5), and ``fraction``, gamma on the first
``early_fraction`` of the steps (the embedded toy models pin it with their tuned gamma in their
``strategy_defaults.json``; docs/parity.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit, Temperature, taca_gamma
from scenewright.executor.options import Bound, Choice, Range, require_choice
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

MODES = ("paper", "fraction")
DEFAULT_MODE = "paper"
# TACA's public code (Vchitect/TACA, infer/pipeline_taca_flux.py): gamma 1.2 while step < 3.
PAPER_GAMMA = 1.2
PAPER_EARLY_STEPS = 3
DEFAULT_GAMMA = PAPER_GAMMA
DEFAULT_EARLY_FRACTION = 0.1
# What ``taca:key=value`` may set: a temperature below 0.5 (gamma above 2) turns outlines
# cartoonish (TACA's paper), and a gamma at or below 0 inverts attention.
OPTIONS: dict[str, Bound] = {
    "gamma": Range(0.5, 2.0),
    "early_fraction": Range(0.0, 1.0),
    "mode": Choice(MODES),
}


def check_mode(mode: str, early_fraction: float) -> None:
    """Refuse an unknown mode, and an ``early_fraction`` that the paper's fixed count would ignore."""
    require_choice("taca.mode", mode, MODES)
    if mode == "paper" and early_fraction != DEFAULT_EARLY_FRACTION:
        raise InvalidInputError(
            "taca.early_fraction",
            f"early_fraction={early_fraction:g} has no effect in mode=paper (the first 3 steps)",
            "add mode=fraction, or leave early_fraction out",
        )


def taca_edit(
    gamma: float = DEFAULT_GAMMA, early_fraction: float = DEFAULT_EARLY_FRACTION, mode: str = DEFAULT_MODE
) -> Temperature:
    """The temperature edit: ``gamma`` on the first 3 steps (``paper``) or on the first
    ``early_fraction`` of them (``fraction``)."""
    check_mode(mode, early_fraction)
    early_steps = PAPER_EARLY_STEPS if mode == "paper" else None
    return Temperature(schedule=taca_gamma(gamma, early_fraction, early_steps))


def schedule_report(gamma: float, early_fraction: float, mode: str) -> dict[str, Any]:
    """What a render reports of its temperature schedule."""
    if mode == "paper":
        return {"mode": mode, "gamma": gamma, "early_steps": PAPER_EARLY_STEPS}
    return {"mode": mode, "gamma": gamma, "early_fraction": early_fraction}


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
    mode: str = DEFAULT_MODE,
) -> RenderResult:
    """Vanilla with the temperature on its early steps, under the model's own guidance (CFG on
    the toy models' unguided early steps measured worse, docs/benchmarks.md)."""
    result = render_vanilla(
        backend,
        plan,
        settings,
        hooks=hooks,
        edits=[taca_edit(gamma, early_fraction, mode), *edits],
        progress=progress,
    )
    result.strategy = "taca"
    result.report.update(schedule_report(gamma, early_fraction, mode))
    return result
