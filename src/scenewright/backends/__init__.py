"""MMDiT families behind one interface: ``flux``, ``sd3`` and the embedded ``tiny`` model."""

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.registry import ALIASES, BackendSpec, load_backend, resolve_backend
from scenewright.backends.tokens import WordSpan

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
