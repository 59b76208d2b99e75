"""MMDiT families behind one interface: ``flux``, ``sd3`` and the embedded ``tiny`` model.

Imported lazily: ``scenewright.backends.specs`` (names, sizes, devices) is read without torch, so
a bad argument is refused before the heavy libraries load; the names below load them on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenewright.backends.base import (
        Backend,
        BlockRef,
        GuidanceMode,
        PromptEncoding,
        SamplingDefaults,
        TokenOrder,
    )
    from scenewright.backends.registry import load_backend
    from scenewright.backends.specs import ALIASES, BackendSpec, resolve_backend
    from scenewright.backends.tokens import WordSpan

_HOMES = {
    "ALIASES": "specs",
    "Backend": "base",
    "BackendSpec": "specs",
    "BlockRef": "base",
    "GuidanceMode": "base",
    "PromptEncoding": "base",
    "SamplingDefaults": "base",
    "TokenOrder": "base",
    "WordSpan": "tokens",
    "load_backend": "registry",
    "resolve_backend": "specs",
}
__all__ = [
    "ALIASES",
    "Backend",
    "BackendSpec",
    "BlockRef",
    "GuidanceMode",
    "PromptEncoding",
    "SamplingDefaults",
    "TokenOrder",
    "WordSpan",
    "load_backend",
    "resolve_backend",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scenewright.backends' has no attribute {name!r}")
    return getattr(importlib.import_module(f"scenewright.backends.{home}"), name)
