"""LoRAs on a loaded backend, through diffusers' PEFT integration.

FLUX and SD3 pipelines load with their own ``load_lora_weights`` (which also converts Kohya and
other trainers' key layouts); the embedded models have no pipeline, so their FLUX transformer takes
the state dict ``FluxPipeline.lora_state_dict`` converts, through ``load_lora_adapter``. Each LoRA
is one named PEFT adapter. An adapter is either the whole image's (active at its ``--lora``
scale on every token) or bound to objects (inactive, switched on per token by
:mod:`scenewright.executor.object_lora` where its objects' regions are drawn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenewright.backends.base import Backend
from scenewright.backends.lora_files import (
    LoraFile,
    LoraSpec,
    inspect_lora,
    lora_family_of,
    parse_loras,
    shipped_loras,
)
from scenewright.errors import InvalidInputError


@dataclass(frozen=True)
class LoadedLora:
    """An adapter in the backend's transformer, and what the metadata records of it."""

    name: str
    source: str
    sha256: str
    scale: float
    shipped: bool = False  # found beside the model, loaded because a plan named it

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "sha256": self.sha256, "scale": self.scale,
                "shipped": self.shipped}  # fmt: skip


def loaded_loras(backend: Backend) -> dict[str, LoadedLora]:
    """The backend's adapters by name (in load order)."""
    loras: dict[str, LoadedLora] = backend.__dict__.setdefault("_loras", {})
    return loras


def backend_family(backend: Backend) -> str:
    """The LoRA family of a backend: the embedded models are FLUX transformers."""
    return lora_family_of(backend.family)


def model_dir(backend: Backend) -> Path | None:
    """The folder of an embedded model (where its shipped LoRAs are), or None."""
    root = getattr(backend, "model_dir", None)
    return Path(root) if root is not None else None


def _lora_layers(transformer: Any, name: str) -> int:
    """How many of the transformer's layers carry adapter ``name``."""
    return sum(1 for module in transformer.modules() if name in getattr(module, "lora_A", {}))


def _load_file(backend: Backend, found: LoraFile) -> None:
    """One adapter into the transformer (and the text encoders where the file has their keys)."""
    name, path = found.spec.name, str(found.path)
    pipe = getattr(backend, "pipe", None)
    try:
        if pipe is not None:
            pipe.load_lora_weights(path, adapter_name=name)
        else:
            from diffusers import FluxPipeline

            state = FluxPipeline.lora_state_dict(path)
            backend.transformer.load_lora_adapter(state, prefix="transformer", adapter_name=name)
    except (RuntimeError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InvalidInputError(
            "lora", f"{found.spec.source} does not fit {backend.name} ({reason})",
            f"give a LoRA trained for {backend.name}",
        ) from None  # fmt: skip
    if _lora_layers(backend.transformer, name) == 0:
        raise InvalidInputError(
            "lora", f"{found.spec.source} changes no layer of {backend.name}'s transformer",
            f"give a LoRA trained for {backend.name}",
        )  # fmt: skip


def load_loras(backend: Backend, loras: Iterable[str | LoraSpec], *, fuse: bool = False) -> list[LoadedLora]:
    """Load ``--lora`` values onto ``backend``, each active on the whole image at its scale.

    Every file is checked (a LoRA, of this family) before the first is loaded. ``fuse`` merges the
    whole-image adapters into the weights (diffusers' ``fuse_lora``): no per-step cost, but they
    can no longer be bound to objects or unloaded."""
    specs = parse_loras([s for s in loras if isinstance(s, str)]) + [
        s for s in loras if isinstance(s, LoraSpec)
    ]
    present = loaded_loras(backend)
    for spec in specs:
        if spec.name in present:
            raise InvalidInputError(
                "lora", f"a LoRA named {spec.name!r} is already loaded", "name it otherwise"
            )
    found = [inspect_lora(spec, backend_family(backend)) for spec in specs]
    added = []
    for item in found:
        _load_file(backend, item)
        loaded = LoadedLora(item.spec.name, item.spec.source, item.sha256, item.spec.scale)
        present[loaded.name] = loaded
        added.append(loaded)
    activate(backend, bound=())
    if fuse and added:
        fuse_loras(backend)
    return added


def load_shipped(backend: Backend, names: Iterable[str], field: str = "loras") -> None:
    """Load the model's shipped LoRAs that ``names`` call for and no ``--lora`` loaded; an unknown
    name is one line listing what there is."""
    present = loaded_loras(backend)
    shipped = shipped_loras(model_dir(backend))
    for name in names:
        if name in present:
            continue
        if name not in shipped:
            known = sorted({*present, *shipped})
            raise InvalidInputError(
                f"{field}.name", f"no LoRA named {name!r} is loaded or shipped with {backend.name}",
                f"use one of {', '.join(known)}" if known else "load it with --lora NAME=PATH",
            )  # fmt: skip
        found = inspect_lora(
            LoraSpec(str(shipped[name]), name, 1.0), backend_family(backend), f"{field}.name"
        )
        _load_file(backend, found)
        present[name] = LoadedLora(name, f"{SHIPPED_PREFIX}{name}", found.sha256, 1.0, shipped=True)


# How a shipped LoRA's source is recorded: the model's own, wherever the package is installed.
SHIPPED_PREFIX = "shipped:"


def activate(backend: Backend, bound: Iterable[str], on: Sequence[str] = ()) -> None:
    """Set the active adapters: every whole-image one at its scale except those in ``bound``
    (bound to objects: off), and those in ``on`` at 1 in the transformer only (their scale is
    then the per-token mask's). Shipped LoRAs are never the whole image's."""
    present = loaded_loras(backend)
    if not present or backend.__dict__.get("_loras_fused"):
        return
    bound_set = set(bound) | set(on)
    whole = [lora for lora in present.values() if lora.name not in bound_set and not lora.shipped]
    names, weights = [lora.name for lora in whole], [lora.scale for lora in whole]
    pipe = getattr(backend, "pipe", None)
    transformer = backend.transformer
    if pipe is not None:  # the text encoders' parts of a LoRA follow the whole image's only
        if names:
            pipe.enable_lora()
            pipe.set_adapters(names, weights)
        else:
            pipe.disable_lora()
    if not names and not on:
        transformer.disable_lora()
        return
    transformer.enable_lora()
    transformer.set_adapters([*names, *on], [*weights, *([1.0] * len(on))])


def fuse_loras(backend: Backend) -> None:
    """Merge the active whole-image adapters into the transformer's weights."""
    if any(lora.shipped for lora in loaded_loras(backend).values()):
        raise InvalidInputError("lora", "LoRAs bound to objects cannot be fused", "leave fuse off")
    backend.transformer.fuse_lora()
    backend.__dict__["_loras_fused"] = True


def describe_loras(backend: Backend) -> list[dict[str, Any]]:
    """What the PNG metadata records: every adapter's source, content hash and scale."""
    return [lora.describe() for lora in loaded_loras(backend).values()]
