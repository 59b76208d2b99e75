"""The one way a tensor leaves torch: detached, float32, on the CPU.

Maps, features and images computed on a GPU in bf16 or fp16 end up in numpy (scikit-learn,
scipy, PIL). ``tensor.numpy()`` fails on a CUDA tensor and on bf16, so every such crossing goes
through :func:`to_numpy`; a test walks ``src/`` and fails on any other ``.numpy()`` call.
"""

from __future__ import annotations

import numpy as np
import torch


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a float32 numpy array on the CPU (booleans and integers become 0.0/1.0/...)."""
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def to_numpy_bool(tensor: torch.Tensor) -> np.ndarray:
    """A mask as a boolean numpy array on the CPU (nonzero is True)."""
    return to_numpy(tensor) != 0
