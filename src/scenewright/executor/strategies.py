"""The strategies by name. Each takes a backend, a plan and settings and returns a RenderResult.

``A+taca`` runs strategy ``A`` with TACA's temperature added to its attention edits, and
``A:key=value:...`` overrides its numeric options (``regional:base_ratio=0.2:inject_fraction=0.5``),
which is how the defaults are tuned on the benchmark.

Every strategy's own defaults are its authors' (docs/parity.md). A backend may carry its own tuning
(its preset, ``strategy_defaults.json``: see ``presets``); ``mode=tuned``, the default, applies it,
``preset=NAME`` applies another backend's instead, and ``mode=paper`` leaves tuning out, so
``regional:mode=paper`` runs the authors' method on any backend. Options named in the strategy
string apply on top.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scenewright.backends.base import Backend
from scenewright.executor import catalogue, presets
from scenewright.executor.attention import Edit
from scenewright.executor.auto import render_auto
from scenewright.executor.catalogue import DEFAULT_MODE, OPTIONS, PRESET, bounds, check_name
from scenewright.executor.numina import render_numina
from scenewright.executor.object_lora import lora_render
from scenewright.executor.options import Bound
from scenewright.executor.refine import render_refine
from scenewright.executor.regional import render_regional
from scenewright.executor.sampler import SamplerHook, SamplingSettings
from scenewright.executor.stitch import render_stitch
from scenewright.executor.taca import render_taca, taca_edit
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.plan import Plan

Strategy = Callable[..., RenderResult]
# The names the registry runs, as the catalogue lists them.
strategy_names = catalogue.strategy_names

STRATEGIES: dict[str, Strategy] = {
    "vanilla": render_vanilla,
    "regional": render_regional,
    "taca": render_taca,
    "numina": render_numina,
    "stitch": render_stitch,
}
# The ranges and choices of each strategy's options (declared, with the options, in ``catalogue``).
OPTION_BOUNDS: dict[str, dict[str, Bound]] = {
    name: bounds(name) for name, options in OPTIONS.items() if options
}


def parse_options(function: Strategy, name: str, text: str) -> dict[str, Any]:
    """``key=value:key=value`` as keyword arguments of ``function`` (the strategy ``name`` runs),
    typed like their defaults, as the catalogue declares them (``mode`` included; a ``preset``
    is checked and left to ``model_options``, which reads it from ``name``)."""
    options = catalogue.parse_options(name, text)
    options.pop(PRESET, None)
    return options


def get_strategy(name: str, taca_options: Mapping[str, Any] | None = None) -> tuple[Strategy, list[Edit]]:
    """The function for ``name`` (without options) and the extra edits its suffix asks for
    (``+taca``: TACA with ``taca_options``, the module's defaults when None)."""
    base = check_name(name)
    extra = name.partition(":")[0].partition("+")[2]
    return STRATEGIES[base], ([taca_edit(**(taca_options or {}))] if extra else [])


def tuned_options(
    function: Strategy, name: str, backend: Backend, tuning: presets.Tuning | None = None
) -> dict[str, Any]:
    """The options ``backend`` was tuned with for this strategy (its ``strategy_defaults``, or
    ``tuning``, a preset, when given), checked like options typed by a user so that a bad file
    fails with the option's name.

    A composition ("regional+taca") takes its base's tuned options, overridden by those the file
    holds under the composition's own name: options tuned for a strategy alone can hurt it
    beside TACA (on tiny16, regional's guidance and TACA's temperature together overshoot)."""
    tuned = presets.strategy_preset(backend.strategy_defaults if tuning is None else tuning, name)
    if not tuned:
        return {}
    text = ":".join(f"{key}={value}" for key, value in tuned.items())
    return parse_options(function, name.partition(":")[0].partition("+")[0], text)


def chosen_tuning(name: str, backend: Backend) -> presets.Tuning | None:
    """The tuning ``name`` runs with: the preset it names, else the backend's own (None: none,
    as with ``mode=paper`` or a backend that ships none)."""
    named = option_in(name, PRESET)
    if named is not None:
        return presets.tuning(named)
    if strategy_mode(name) == "paper":
        return None
    return getattr(backend, "strategy_defaults", None) or None


def model_options(function: Strategy, name: str, backend: Backend) -> dict[str, Any]:
    """Keyword arguments the model was tuned with for this strategy: its preset (or the one
    ``name`` names), and for refine the tuned regional options of its repair pass (which is
    regional prompting). Every face renders through this, so a model's tuning applies wherever
    it runs; none with ``mode=paper`` in ``name``."""
    tuning = chosen_tuning(name, backend)
    if tuning is None:
        return {}
    options = tuned_options(function, name, backend, tuning)
    if "repair_options" in inspect.signature(function).parameters:
        options["repair_options"] = tuned_options(render_regional, "regional", backend, tuning)
    return options


def option_in(name: str, key: str) -> str | None:
    """The value of ``key`` named in a strategy string (``stitch:preset=tiny16``), else None."""
    for item in name.partition(":")[2].split(":"):
        found, _, value = item.partition("=")
        if found.strip() == key:
            return value.strip()
    return None


def strategy_mode(name: str) -> str:
    """The ``mode`` named in a strategy string (``stitch:mode=paper``), else the default."""
    return option_in(name, "mode") or DEFAULT_MODE


def resolve_options(function: Strategy, name: str, backend: Backend) -> dict[str, Any]:
    """The keyword arguments ``name`` runs with on ``backend``: the model's tuning or the preset
    named (none with ``mode=paper``), then the options the name gives."""
    options = parse_options(function, name, name.partition(":")[2])
    options.pop("mode", None)
    return {**model_options(function, name, backend), **options}


def run_strategy(
    name: str,
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
) -> RenderResult:
    """Render ``plan`` with the strategy ``name`` (options and ``+taca`` included), the model's
    tuned options first; ``edits`` are extra attention edits laid on top."""
    # "+taca" takes TACA with the options this model (or the preset named) was tuned with, if any.
    tuning = chosen_tuning(name, backend)
    taca_tuning = {} if tuning is None else tuned_options(render_taca, "taca", backend, tuning)
    function, suffix_edits = get_strategy(name, taca_tuning)
    edits = [*suffix_edits, *edits]
    options = resolve_options(function, name, backend)
    if edits:
        with lora_render(backend, plan):
            result = function(backend, plan, settings, hooks=hooks, edits=edits, progress=progress, **options)
        result.strategy = name
        return result
    with lora_render(backend, plan):
        result = function(backend, plan, settings, hooks=hooks, progress=progress, **options)
    if options or ":" in name:
        result.strategy = name
    return result


# Refine renders its base strategy, and auto its choice, through this registry; each is handed the
# runner rather than importing the module that lists it (no import circle).
STRATEGIES["auto"] = functools.partial(render_auto, run_chosen=run_strategy)
STRATEGIES["refine"] = functools.partial(render_refine, run_base=run_strategy)
