"""The edits a processor applies: small objects, several of which may be active at once.

Structural (at most one per site): :class:`RegionMask`. Logit modifiers on image-query x
text-key logits, which compose by summing biases and multiplying temperatures:
:class:`AttentionBias`, :class:`Temperature`. Observers, which never change the image:
:class:`CaptureMaps` here and :class:`~scenewright.executor.attention.concept.ConceptAttention`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from scenewright.errors import InvalidInputError
from scenewright.executor.attention.carry import carry_base_image
from scenewright.executor.attention.masks import (
    RegionLayout,
    RegionShape,
    mask_value,
    region_token_masks,
)
from scenewright.executor.attention.reading import READ_BUDGET_BYTES, text_mass, token_weights
from scenewright.executor.attention.schedules import Schedule, Site, Sites, constant, taca_gamma
from scenewright.executor.attention.view import EngineView
from scenewright.executor.catalogue import BASE_STREAMS, IMAGE_ATTENTION_MODES
from scenewright.executor.options import require_choice


@dataclass
class Edit:
    """Base class: where and when the edit acts, and on which batch rows (``None``: all).

    ``rows`` lets a strategy touch only the conditional half of a CFG batch (NUMINA does).
    """

    sites: Sites = field(default_factory=Sites, kw_only=True)
    rows: tuple[int, ...] | None = field(default=None, kw_only=True)

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return self.sites.active(site, step)

    def row_weights(self, batch: int, device: torch.device) -> torch.Tensor:
        """(B,) 1.0 on the rows the edit applies to, 0.0 elsewhere."""
        weights = torch.ones(batch, device=device)
        if self.rows is not None:
            weights.zero_()
            weights[list(self.rows)] = 1.0
        return weights


@dataclass
class RegionMask(Edit):
    """Regional-Prompting-FLUX: N regional prompts in the text sequence, each bound to a region.

    The text sequence is ``[r1; ...; rN; base]``: ``text_spans`` give each regional prompt's
    [start, end) range and ``base_span`` the base prompt's. The blocks treat text tokens one by one
    except in attention, so the base prompt carried as extra tokens that only the base pass sees
    is its own text stream. In an active block the regional pass runs with the region mask and
    the base pass plainly over [base; image]; image outputs are blended as
    ``(1 - base_ratio) * regional + base_ratio * base``. A shape of ``None`` is a background
    region: the tokens no other region covers. After the steps of ``sites``, attention is plain
    over [base; image] (or over everything when there is no base prompt).

    ``base_stream`` says what happens where the two kinds of run differ (see ``BASE_STREAMS``):
    "separate" is the authors' code: in FLUX's single-stream blocks the base pass reads the base
    prompt's own image stream, a copy of the image tokens taken at the first single block that
    only the base pass updates (carried as extra tokens after the text, :meth:`install`), and
    blocks outside ``sites`` (but within its steps) still run the regional pass, unmasked, and
    blend the base pass in. "shared" keeps one image stream (the base pass reads the blended
    image tokens) and attends plainly over [base; image] in blocks outside ``sites``. The double
    blocks of FLUX and SD3's joint blocks have one image stream in the authors' code too, so there
    the two differ only outside ``sites``.
    """

    text_spans: Sequence[tuple[int, int]] = ()
    shapes: Sequence[RegionShape] = ()
    base_span: tuple[int, int] | None = None
    base_ratio: float = 0.3
    # "region": image tokens attend only within their region (Regional-Prompting-FLUX); "all":
    # every image token attends to every other and only the text is bound to regions (our
    # option for coarse token grids, where a box of 3x3 tokens cannot draw a whole object alone);
    # "context": a region's image tokens also read the uncovered canvas (see RegionLayout.build).
    image_attention: str = "region"
    base_stream: str = "shared"

    def __post_init__(self) -> None:
        require_choice("base_stream", self.base_stream, BASE_STREAMS)
        if self.rows is not None:
            raise InvalidInputError(
                "rows", "a region mask applies to every batch row", "give the negative prompt the same layout"
            )
        if len(self.text_spans) != len(self.shapes):
            raise InvalidInputError(
                "regions", f"{len(self.text_spans)} prompts for {len(self.shapes)} shapes", "give one each"
            )
        require_choice("image_attention", self.image_attention, IMAGE_ATTENTION_MODES)
        if not 0.0 <= self.base_ratio <= 1.0:
            raise InvalidInputError("base_ratio", f"{self.base_ratio} is outside [0, 1]", "use 0.2 to 0.7")

    @classmethod
    def from_lengths(
        cls,
        region_lengths: Sequence[int],
        shapes: Sequence[RegionShape],
        base_length: int | None = None,
        **kwargs: Any,
    ) -> RegionMask:
        """Spans for prompts concatenated in order: regions first, then the base prompt."""
        spans, start = [], 0
        for length in region_lengths:
            spans.append((start, start + length))
            start += length
        base = None if base_length is None else (start, start + base_length)
        return cls(text_spans=spans, shapes=shapes, base_span=base, **kwargs)

    def steps_on(self, step: int) -> bool:
        """Whether ``step`` is one of the regional steps (whatever the block)."""
        return self.sites.has_step(step)

    def carries_base_image(self) -> bool:
        """Whether the single-stream blocks carry the base prompt's own image stream."""
        return self.base_stream == "separate" and self.base_span is not None

    def install(self, engine: EngineView, transformer: Any) -> list[Any]:
        """With a separate base stream on a FLUX-class transformer, hooks that carry the base image stream."""
        blocks = getattr(transformer, "single_transformer_blocks", None)
        if not self.carries_base_image() or not blocks:
            return []
        return carry_base_image(engine, self, list(blocks))

    def layout(self, grid: tuple[int, int], text_len: int) -> RegionLayout:
        """The regional pass for this grid (built once per sampling call by the engine)."""
        covered = sum(e - s for s, e in self.text_spans) + (
            0 if self.base_span is None else self.base_span[1] - self.base_span[0]
        )
        if covered != text_len:
            raise InvalidInputError(
                "regions",
                f"spans cover {covered} of {text_len} text tokens",
                "give spans for every text token",
            )
        return RegionLayout.build(
            self.text_spans,
            region_token_masks(self.shapes, grid),
            text_len,
            image_attention=self.image_attention,
            background=[i for i, shape in enumerate(self.shapes) if shape is None],
        )


@dataclass
class AttentionBias(Edit):
    """NUMINA: an additive pre-softmax bias on image-query x text-key logits.

    ``maps`` sends a text position to a spatial map of any size (resized to the token grid with
    nearest-exact); the bias at a step is ``schedule(step, num_steps) * map``. ``-inf`` is allowed
    and means "this image region never sees that token" (stored as a large finite negative).
    """

    maps: Mapping[int, torch.Tensor] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=lambda: constant(1.0))

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return super().active(site, step, num_steps) and self.schedule(step, num_steps) != 0.0

    def placed(self, grid: tuple[int, int], text_len: int, batch: int, device: torch.device) -> torch.Tensor:
        """(B, N, T) float32 bias at strength 1, on ``device``: built once per sampling call."""
        rows, cols = grid
        bias = torch.zeros(batch, rows * cols, text_len, device=device)
        limit = -mask_value(torch.float32)
        for position, spatial in self.maps.items():
            if not 0 <= position < text_len:
                raise InvalidInputError("bias", f"text position {position} is outside 0..{text_len - 1}", "")
            resized = F.interpolate(spatial.float()[None, None], size=grid, mode="nearest-exact")[0, 0]
            bias[:, :, position] = resized.clamp(-limit, limit).flatten().to(device)
        return bias * self.row_weights(batch, device)[:, None, None]


@dataclass
class Temperature(Edit):
    """TACA: multiply image-query x text-key logits by gamma(t), for any size and text length."""

    schedule: Schedule = field(default_factory=taca_gamma)

    def active(self, site: Site, step: int, num_steps: int) -> bool:
        return super().active(site, step, num_steps) and self.schedule(step, num_steps) != 1.0

    def gamma(self, step: int, num_steps: int, batch: int, device: torch.device) -> torch.Tensor:
        """(B,) multipliers: gamma on the chosen rows, 1 elsewhere."""
        weights = self.row_weights(batch, device)
        return 1.0 + (self.schedule(step, num_steps) - 1.0) * weights


@dataclass
class CaptureMaps(Edit):
    """Text-to-image attention maps: for each chosen text token, how much each image query attends.

    Read with the same temperature, bias and region mask as the real passes, from the projected
    queries and keys (see :mod:`.reading`: chunked, never the full logits); the attention itself
    is left untouched, so the image is bit-identical. The state is one float32 running sum of
    (B, tokens, image tokens), whatever the number of blocks and steps observed; ``maps()``
    averages heads, blocks and steps into (B, K, rows, cols).
    """

    tokens: Sequence[int] = ()
    budget: int = READ_BUDGET_BYTES
    total: torch.Tensor | None = field(default=None, init=False, repr=False)
    count: int = field(default=0, init=False)
    grid: tuple[int, int] = field(default=(0, 0), init=False)

    def reset(self) -> None:
        self.total, self.count = None, 0

    def observe(
        self,
        engine: EngineView,
        site: Site,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        output: torch.Tensor,
        text_len: int,
    ) -> None:
        """Add the probabilities of the chosen tokens for every image query at this site.

        Under a region mask each pass is read as it ran (the regional pass masked, the base pass
        plain) and the two are blended with the weights of the image outputs.
        """
        batch, seq = query.shape[:2]
        n_image = seq - text_len
        gamma, bias = engine.modifiers(site, batch, text_len, n_image, query.device)
        if self.total is None:
            self.total = torch.zeros(batch, len(self.tokens), n_image, device=query.device)
        groups = [[token] for token in self.tokens]
        for read in engine.read_passes(site, text_len, n_image, query.device):
            weights = token_weights(read, groups, mean=False)
            if weights is None:
                continue
            for start, stop, mass in text_mass(query, key, text_len, read, weights, gamma, bias, self.budget):
                self.total[:, :, start:stop] += read.weight * mass.mean(dim=1).transpose(1, 2)
        self.count += 1
        self.grid = engine.grid

    def maps(self) -> torch.Tensor:
        """(B, K, rows, cols): the mean over every observed site and step."""
        if self.total is None or self.count == 0:
            raise RuntimeError("no attention was captured: were the chosen blocks and steps ever run?")
        mean = self.total / self.count
        return mean.reshape(*mean.shape[:2], *self.grid)
