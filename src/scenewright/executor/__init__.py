"""Run plans on an MMDiT: the sampler and the strategies built on it."""

from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings, StepContext, sample
from scenewright.executor.vanilla import RenderResult, render_vanilla

__all__ = [
    "RenderResult",
    "SampleResult",
    "SamplerHook",
    "SamplingSettings",
    "StepContext",
    "render_vanilla",
    "sample",
]
