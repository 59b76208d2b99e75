"""scenewright: compositional image generation on MMDiT attention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult

__all__ = ["Agent", "AgentResult", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import scenewright` (and the CLI's start-up) stays light; torch and LangGraph load
    # only when the agent is used.
    if name in ("Agent", "AgentResult"):
        from scenewright.agent import core

        return getattr(core, name)
    raise AttributeError(f"module 'scenewright' has no attribute {name!r}")
