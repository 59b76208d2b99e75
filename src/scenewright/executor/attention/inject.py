"""Feature injection: record image-token q/k/v in one run and write them into another.

exploring-mmdit edits an image by running the target prompt with the source run's image-token
queries and keys in early steps (not every block for few-step FLUX); Stitch-style compositing can
paste an object's features the same way. Text tokens are never touched, so the target prompt
still speaks. Record and inject with the same sites, grid and batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from scenewright.executor.attention.edits import Edit
from scenewright.executor.attention.schedules import Site
from scenewright.executor.attention.view import EngineView

PARTS = ("q", "k", "v")


@dataclass
class FeatureInjection(Edit):
    """``mode="record"`` stores image-token features per (site, step); ``"inject"`` writes them back.

    ``parts`` chooses among q, k, v (post-norm, post-RoPE); ``token_mask`` ((N,) bool over the
    token grid) limits injection to some image tokens, e.g. an object's region. Recording never
    changes the image.
    """

    mode: str = "record"
    parts: Sequence[str] = ("q", "k")
    token_mask: torch.Tensor | None = None
    store: dict[tuple[Site, int], dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("record", "inject"):
            raise ValueError(f"mode must be 'record' or 'inject', not {self.mode!r}")
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise ValueError(f"parts must be among {PARTS}, not {sorted(unknown)}")

    @property
    def injects(self) -> bool:
        return self.mode == "inject"

    def rewrite(
        self,
        engine: EngineView,
        site: Site,
        tensors: dict[str, torch.Tensor],
        text_len: int,
    ) -> None:
        """Record, or replace in place in ``tensors`` (canonical (B, S, H, D)), the image tokens."""
        key = (site, engine.step)
        if not self.injects:
            self.store[key] = {p: tensors[p][:, text_len:].detach().clone() for p in self.parts}
            return
        saved = self.store.get(key)
        if saved is None:
            return
        for part in self.parts:
            image = tensors[part][:, text_len:]
            source = saved[part].to(image.device, image.dtype)
            if self.token_mask is not None:
                mask = self.token_mask.to(image.device)[None, :, None, None]
                source = torch.where(mask, source, image)
            tensors[part] = torch.cat([tensors[part][:, :text_len], source], dim=1)
