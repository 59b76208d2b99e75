"""The baseline strategy: the plan's global prompt, plain sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from scenewright.backends.base import Backend
from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings, sample
from scenewright.planner.plan import Plan


@dataclass
class RenderResult:
    """An image with what produced it."""

    image: Image.Image
    plan: Plan
    settings: SamplingSettings
    strategy: str
    sample: SampleResult
    report: dict[str, Any] = field(default_factory=dict)


def render_vanilla(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    progress: bool = True,
) -> RenderResult:
    """Sample the plan's global prompt with no layout control (what every strategy is compared to)."""
    encoding = backend.encode_prompts([plan.global_prompt])
    result = sample(backend, encoding, settings, hooks=hooks, progress=progress)
    image = backend.to_pil(result.images)[0]
    return RenderResult(image=image, plan=plan, settings=settings, strategy="vanilla", sample=result)
