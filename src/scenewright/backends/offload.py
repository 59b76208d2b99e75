"""Where a pipeline's weights live: all on the device, or on the CPU until each part runs.

diffusers offers two offloads (through accelerate): per model (a model moves to the GPU while it
runs: FLUX.1-dev's 24 GB bf16 transformer still needs a card larger than itself) and sequential
(layer by layer: any card, much slower). The attention engine needs nothing special for either:
its processors and observers build every tensor on the device of the tensors they meet.
"""

from __future__ import annotations

from typing import Any

import torch

from scenewright.backends.specs import OFFLOAD_MODES
from scenewright.errors import InvalidInputError

__all__ = ["OFFLOAD_MODES", "offload_mode", "place_pipeline"]


def offload_mode(value: bool | str | None, device: torch.device) -> str | None:
    """``--cpu-offload`` as None, "model" or "sequential" (True means "model")."""
    if value in (None, False, "", "none"):
        return None
    mode = "model" if value is True else str(value)
    if mode not in OFFLOAD_MODES:
        raise InvalidInputError(
            "cpu-offload", f"unknown mode {mode!r}", f"use one of {', '.join(OFFLOAD_MODES)}"
        )
    if device.type == "cpu":
        raise InvalidInputError(
            "cpu-offload", "the weights are already on the CPU", "drop --cpu-offload or pass --device cuda"
        )
    return mode


def place_pipeline(pipe: Any, device: torch.device, mode: str | None) -> None:
    """Move ``pipe`` to ``device``, or install the offload hooks for ``mode``."""
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
