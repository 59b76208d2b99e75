"""``--detector``: an open-vocabulary detector judges the agent's images on real models.

The verify node and refine's rounds then read detections (count, boxes, CLIP colour, relations
by box centres) instead of ConceptAttention maps; on the embedded model the toy world's exact
evaluator stays the judge of both. The detector and CLIP load on first use, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PIL import Image

from scenewright.backends.base import Backend
from scenewright.planner.plan import Plan
from scenewright.tools.detection.lazy import LazyDetectorVerifier

if TYPE_CHECKING:
    from scenewright.agent.core import Agent
    from scenewright.tools.detection.verify import DetectorVerifier


def _is_tiny(backend: Backend) -> bool:
    from scenewright.backends.tiny import TinyBackend

    return isinstance(backend, TinyBackend)


def attach_detector(agent: Agent, detector: str, clip: str | None = None, device: str | None = None) -> None:
    """Make ``agent`` verify, and refine keep rounds, by the detector ``detector`` names."""
    lazy = LazyDetectorVerifier(detector, clip, device)
    fallback = agent.tools.verifier

    def verify(
        image: Image.Image, plan: Plan, report: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], bool | None]:
        if _is_tiny(agent.load_backend()):
            return fallback(image, plan, report)
        return lazy.get()(image, plan, report)

    def refine_verifier(backend: Backend) -> str | DetectorVerifier:
        return "evaluator" if _is_tiny(backend) else lazy.get()

    agent.tools.verifier = verify
    agent.tools.refine_verifier = refine_verifier
