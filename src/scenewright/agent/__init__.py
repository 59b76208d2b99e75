"""LangGraph agent: plan, validate, route, execute, verify, refine; with terminal and web chats.

Imported lazily: ``import scenewright.agent`` pulls in LangGraph only when ``Agent`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult

__all__ = ["Agent", "AgentResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from scenewright.agent import core

        return getattr(core, name)
    raise AttributeError(f"module 'scenewright.agent' has no attribute {name!r}")
