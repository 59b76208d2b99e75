"""The baseline strategy: the plan's global prompt, plain sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from scenewright.backends.base import Backend
from scenewright.executor.attention import Edit
from scenewright.executor.composition import sample_with_edits
from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings
from scenewright.planner.plan import Plan


@dataclass
class RenderResult:
    """An image with what produced it."""

    image: Image.Image
    plan: Plan
    settings: SamplingSettings
    strategy: str
    sample: SampleResult
    report: dict[str, Any] = field(default_factory=dict)  # JSON-ready: goes into metadata
    artifacts: dict[str, Any] = field(default_factory=dict)  # arrays and maps for tools and tests


def render_vanilla(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
) -> RenderResult:
    """Sample the plan's global prompt with no layout control (what every strategy is compared to).

    ``edits`` (e.g. TACA's temperature) are applied when given; without them the transformer's
    own attention processors run untouched.
    """
    encoding = backend.encode_prompts([plan.global_prompt])
    result = sample_with_edits(backend, encoding, settings, edits, hooks=hooks, progress=progress)
    image = backend.to_pil(result.images)[0]
    return RenderResult(image=image, plan=plan, settings=settings, strategy="vanilla", sample=result)
