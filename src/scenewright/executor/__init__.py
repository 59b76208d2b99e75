"""Run plans on an MMDiT: the sampler and the strategies built on it.

Imported lazily: ``limits``, ``options`` and ``catalogue`` (the checks of settings and strategy
names) are read without torch, so a bad argument is refused before the heavy libraries load; the
names below load the sampler on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings, StepContext, sample
    from scenewright.executor.vanilla import RenderResult, render_vanilla

_HOMES = {
    "RenderResult": "vanilla",
    "SampleResult": "sampler",
    "SamplerHook": "sampler",
    "SamplingSettings": "sampler",
    "StepContext": "sampler",
    "render_vanilla": "vanilla",
    "sample": "sampler",
}
__all__ = [
    "RenderResult",
    "SampleResult",
    "SamplerHook",
    "SamplingSettings",
    "StepContext",
    "render_vanilla",
    "sample",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scenewright.executor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"scenewright.executor.{home}"), name)
