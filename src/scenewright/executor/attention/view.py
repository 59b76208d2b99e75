"""What edits may see of the engine that runs them, without importing it.

The engine imports the edits; the edits only need a narrow view of it (the step, the token grid,
the logit modifiers and the passes image queries take). Typing them against this protocol keeps
the import graph one-way: engine -> edits -> view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from scenewright.executor.attention.schedules import Site


@dataclass(frozen=True)
class ReadPass:
    """One pass as image queries see it: key positions (text first), region bits, blend weight."""

    keys: torch.Tensor  # canonical positions of the keys, text first
    n_text: int  # how many of ``keys`` are text
    image_bits: torch.Tensor | None  # (N,) region bits of image queries in canonical order
    key_bits: torch.Tensor | None  # region bits of ``keys``
    weight: float  # the pass's share of the image output


class EngineView(Protocol):
    """The engine as observers and injections use it."""

    step: int
    num_steps: int
    grid: tuple[int, int]
    carried: int  # base image tokens carried after the text in single-stream blocks (see .carry)

    def modifiers(
        self, site: Site, batch: int, text_len: int, n_image: int, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(B,) temperature and (B, N, T) float32 bias on image-query x text-key logits, or None."""
        ...

    def read_passes(self, site: Site, text_len: int, n_image: int, device: torch.device) -> list[ReadPass]:
        """The passes image queries take at this site, with their blend weights."""
        ...
