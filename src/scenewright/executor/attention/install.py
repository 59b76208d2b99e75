"""Install engine processors on a backend's transformer, and put the originals back after."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from scenewright.backends.base import Backend
from scenewright.executor.attention.edits import Edit
from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.flux2_processor import flux2_processors, is_flux2
from scenewright.executor.attention.processors import FluxEngineProcessor, SD3EngineProcessor
from scenewright.executor.attention.z_image_processor import (
    is_z_image,
    set_z_image_processors,
    z_image_processor_map,
    z_image_processors,
)

_KINDS = {"transformer_blocks": "double", "single_transformer_blocks": "single"}


def _family_processors() -> dict[str, Callable[[Any, AttentionEngine], dict[str, Any]]]:
    """Families whose attention sites need processors of their own, by transformer class."""
    from scenewright.executor.attention.chroma_processor import chroma_processors
    from scenewright.executor.attention.qwen_processor import qwen_processors

    return {
        "ChromaTransformer2DModel": chroma_processors,
        "QwenImageTransformer2DModel": qwen_processors,
    }


def engine_processors(transformer: Any, engine: AttentionEngine) -> dict[str, Any]:
    """One processor per attention module, named by its block: each family by its model's layout."""
    if is_z_image(transformer):
        return z_image_processors(transformer, engine)
    if is_flux2(transformer):
        return flux2_processors(transformer, engine)
    own = _family_processors().get(type(transformer).__name__)
    if own is not None:
        return own(transformer, engine)
    flux = hasattr(transformer, "single_transformer_blocks")
    processors: dict[str, Any] = {}
    for name in transformer.attn_processors:
        parts = name.split(".")  # e.g. transformer_blocks.3.attn.processor
        index = int(parts[1])
        if flux:
            processors[name] = FluxEngineProcessor(engine, (_KINDS[parts[0]], index))
        else:
            processors[name] = SD3EngineProcessor(engine, ("joint", index), image_only=parts[2] == "attn2")
    return processors


@contextmanager
def installed(transformer: Any, engine: AttentionEngine) -> Iterator[AttentionEngine]:
    """Install ``engine``'s processors (and its edits' hooks) on a bare transformer; restore on exit."""
    z_image = is_z_image(transformer)  # a model without diffusers' AttentionMixin
    originals = z_image_processor_map(transformer) if z_image else dict(transformer.attn_processors)
    set_processors = set_z_image_processors if z_image else type(transformer).set_attn_processor
    set_processors(transformer, engine_processors(transformer, engine))
    handles: list[Any] = []
    try:
        for edit in engine.edits:
            install = getattr(edit, "install", None)
            if install is not None:
                handles.extend(install(engine, transformer))
        yield engine
    finally:
        for handle in handles:
            handle.remove()
        set_processors(transformer, dict(originals))


@contextmanager
def attention_engine(
    backend: Backend, edits: Sequence[Edit] = (), **engine_kwargs: Any
) -> Iterator[AttentionEngine]:
    """Route ``backend``'s attention through an engine applying ``edits``; restore on exit.

    Pass the yielded engine to :func:`~scenewright.executor.sampler.sample` as a hook so it learns
    the step and the grid::

        with attention_engine(backend, [RegionMask(...)]) as engine:
            sample(backend, encoding, settings, hooks=[engine])
    """
    engine = AttentionEngine(edits, grid_fn=backend.token_grid, **engine_kwargs)
    # The processors live on the shared transformer: no other render may run while they do.
    with backend.render_lock(), installed(backend.transformer, engine):
        yield engine
