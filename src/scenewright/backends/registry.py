"""Load a backend with clear errors, on a device this machine has.

Names, hub ids and folders are resolved in ``specs`` (without torch) before any weights load, so a
bad name or an uncached checkpoint is reported in one line instead of deep inside
``from_pretrained``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from scenewright.backends.base import Backend
from scenewright.backends.offload import offload_mode, place_pipeline
from scenewright.backends.quantize import check_quantize, quantization_config
from scenewright.backends.specs import (
    ALIASES,
    TINY16_DIR,
    BackendSpec,
    _hub_offline,
    resolve_backend,
    resolve_hub_or_folder,
)
from scenewright.errors import BackendError, InvalidInputError

__all__ = [
    "ALIASES",
    "TINY16_DIR",
    "BackendSpec",
    "default_device",
    "load_backend",
    "parse_dtype",
    "resolve_backend",
    "resolve_device",
    "resolve_hub_or_folder",
]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(value: str | torch.device | None) -> torch.device:
    """``--device`` checked before any weights load: a device this torch build has, or one line."""
    if value is None or value == "":
        return default_device()
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as error:
        raise InvalidInputError(
            "device", f"'{value}' is not a device", "use --device cpu or --device cuda"
        ) from error
    if device.type not in ("cpu", "cuda"):
        raise InvalidInputError("device", f"'{value}' is not supported", "use --device cpu or --device cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError("device", "CUDA is not available on this machine", "use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InvalidInputError(
                "device",
                f"{value} does not exist ({torch.cuda.device_count()} CUDA devices)",
                "use --device cuda:0",
            )
    return device


def parse_dtype(value: str | None, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on GPUs and float32 on CPUs."""
    choices = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}  # fmt: skip
    if value in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if value not in choices:
        raise InvalidInputError("dtype", f"unknown dtype '{value}'", f"use one of auto, {', '.join(choices)}")
    return choices[value]


def _qwen_image() -> tuple[Any, Any]:
    from diffusers import QwenImagePipeline

    from scenewright.backends.qwen_image import QwenImageBackend

    return QwenImagePipeline, QwenImageBackend


def _chroma() -> tuple[Any, Any]:
    from diffusers import ChromaPipeline

    from scenewright.backends.chroma import ChromaBackend

    return ChromaPipeline, ChromaBackend


# Families loaded the same way: (diffusers pipeline class, our backend class), imported on use.
FAMILY_LOADERS: dict[str, Callable[[], tuple[Any, Any]]] = {"qwen-image": _qwen_image, "chroma": _chroma}


def load_backend(
    spec: BackendSpec,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    cpu_offload: bool | str | None = False,
    quantize: str | None = None,
) -> Backend:
    """Load the weights a spec points at; errors from the hub or disk become :class:`BackendError`."""
    torch_device = resolve_device(device)
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else parse_dtype(dtype, torch_device)
    offload = offload_mode(cpu_offload, torch_device)
    quantized = check_quantize(quantize, spec.family, torch_device)
    if spec.family == "tiny":
        from scenewright.backends.tiny import TinyBackend

        if spec.source is None:
            return TinyBackend.embedded(device=torch_device, dtype=torch_dtype)
        return TinyBackend.from_pretrained(
            spec.source, device=torch_device, dtype=torch_dtype, name=spec.name
        )
    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
    if _hub_offline():
        kwargs["local_files_only"] = True
    if quantized is not None:
        kwargs["quantization_config"] = quantization_config(quantized, spec.family, torch_dtype)
    try:
        if spec.family == "flux":
            from diffusers import FluxPipeline

            from scenewright.backends.flux import FluxBackend

            pipe = FluxPipeline.from_pretrained(spec.source, **kwargs)
            place_pipeline(pipe, torch_device, offload)
            return FluxBackend(pipe, name=spec.name)
        if spec.family == "flux2":
            from scenewright.backends.flux2 import load_flux2

            return load_flux2(spec, torch_device, offload, kwargs)
        if spec.family == "z-image":
            from scenewright.backends.z_image import load_z_image

            return load_z_image(spec, kwargs, torch_device, offload)
        if spec.family in FAMILY_LOADERS:
            pipeline_class, backend_class = FAMILY_LOADERS[spec.family]()
            pipe = pipeline_class.from_pretrained(spec.source, **kwargs)
            place_pipeline(pipe, torch_device, offload)
            return backend_class(pipe, name=spec.name)
        from diffusers import StableDiffusion3Pipeline

        from scenewright.backends.sd3 import SD3Backend

        pipe = StableDiffusion3Pipeline.from_pretrained(spec.source, **kwargs)
        place_pipeline(pipe, torch_device, offload)
        return SD3Backend(pipe, name=spec.name)
    except OSError as error:
        raise BackendError(
            f"backend: could not load '{spec.name}' from {spec.source}: {error}".splitlines()[0]
        ) from error
