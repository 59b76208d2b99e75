"""Out-of-memory failures as one line that says what to lower, never a torch traceback."""

from __future__ import annotations

import torch

from scenewright.errors import ScenewrightError
from scenewright.executor.sampler import SamplingSettings
from scenewright.planner.plan import Plan


class InsufficientMemoryError(ScenewrightError, MemoryError):
    """A render needed more memory than the device had left."""


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's allocator error, the host's MemoryError, or a backend's "out of memory" RuntimeError."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_cached_memory() -> None:
    """Give the CUDA allocator's cached blocks back, so the next attempt starts clean."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def memory_error(
    strategy: str, settings: SamplingSettings, plan: Plan, device: str
) -> InsufficientMemoryError:
    """The one-line error for ``strategy`` running out of memory on ``device``."""
    instances = sum(len(o.boxes) or o.count for o in plan.objects)
    fixes = [f"a smaller size (--height/--width below {settings.height}x{settings.width})", "--cpu-offload"]
    if instances > 1:
        fixes.append(f"fewer objects (the plan has {instances} instances)")
    if strategy not in ("vanilla", "taca"):
        fixes.append("--strategy vanilla")
    return InsufficientMemoryError(
        f"strategy {strategy} ran out of {device} memory at {settings.width}x{settings.height}, "
        f"{settings.steps} steps; try {', '.join(fixes)}"
    )
