"""The attention engine: the state every processor shares, and the passes it runs.

One engine serves all processors of a transformer. It is a :class:`SamplerHook`: before each
step it learns the step, the step count and the token grid, and at step 0 (or on a new size) it
drops its caches, so masks, biases, BlockMasks and token orders are built once per sampling call,
on the device, the first time a block needs them, and reused by every block and step after.
While a benchmark's tally is open (:mod:`.counting`), each pass reports the (query, key) pairs
its kernels computed, so that masked passes are priced by what they cost rather than as dense.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from scenewright.executor.attention.counting import record_pass, tallying_pairs
from scenewright.executor.attention.edits import AttentionBias, CaptureMaps, Edit, RegionMask, Temperature
from scenewright.executor.attention.inject import FeatureInjection
from scenewright.executor.attention.kernels import (
    FlexPass,
    PassGeometry,
    combine_mask,
    dense_attention,
    dense_mask,
    flex_usable,
    segment_attention,
)
from scenewright.executor.attention.masks import mask_value
from scenewright.executor.attention.schedules import Site
from scenewright.executor.attention.view import ReadPass
from scenewright.executor.sampler import SamplerHook, StepContext

KERNELS = ("auto", "dense", "flex", "segments")
# On a CPU the fused FlexAttention kernel is compiled first (tens of seconds) and runs well below
# MKL's dense speed per pair: it only pays on big passes whose mask keeps few pairs.
CPU_FLEX_MIN_PAIRS = 4_000_000
CPU_FLEX_MAX_DENSITY = 0.25


class AttentionEngine(SamplerHook):
    """Applies ``edits`` in every attention processor it is installed with."""

    def __init__(
        self,
        edits: Sequence[Edit] = (),
        *,
        kernel: str = "auto",
        grid_fn: Callable[[int, int], tuple[int, int]] | None = None,
        flex_block_size: int = 128,
        flex_compile: bool = True,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
        regions = [e for e in edits if isinstance(e, RegionMask)]
        if len(regions) > 1:
            raise ValueError("at most one RegionMask may be active in one sampling call")
        self.edits = list(edits)
        self.region = regions[0] if regions else None
        self.kernel = kernel
        self.grid_fn = grid_fn
        self.flex_block_size = flex_block_size
        self.flex_compile = flex_compile
        self.step = 0
        self.num_steps = 1
        self.grid: tuple[int, int] = (0, 0)
        self.cache: dict[Any, Any] = {}
        self.kernels_used: set[str] = set()
        self.text_len: int | None = None  # of the last joint pass: SD3.5's attn2 has no text
        self.pairs_now = 0  # (query, key) pairs of the pass in progress (reported while a tally is open)
        # Base image tokens carried after the text through the single-stream blocks (see .carry).
        self.carried = 0
        # Text padding of the pass in progress (families that pad prompts and mask the padding:
        # Qwen-Image, Chroma), set by their processors: (B, T) bool of the tokens that count, and
        # the logit a counted query adds to a padding key (a large negative: masked out; Chroma:
        # -1, its pipeline's 0/1 mask added to the logits).
        self.text_keep: torch.Tensor | None = None
        self.padding_logit = 0.0

    # ------------------------------------------------------------------ state
    def begin(self, grid: tuple[int, int], num_steps: int) -> None:
        """Start a sampling call: new grid and step count, empty caches and captures."""
        self.grid, self.num_steps, self.step = grid, num_steps, 0
        self.carried = 0
        self.text_keep = None
        self.cache.clear()
        for edit in self.edits:
            reset = getattr(edit, "reset", None)
            if reset is not None:
                reset()

    def before_step(self, ctx: StepContext) -> None:
        grid = self.grid_fn(ctx.height, ctx.width) if self.grid_fn else self.grid
        if ctx.step == 0 or grid != self.grid or ctx.num_steps != self.num_steps:
            self.begin(grid, ctx.num_steps)
        self.step = ctx.step

    def set_padding(self, text_keep: torch.Tensor | None, logit: float | None = None) -> None:
        """The text tokens that count in the pass about to run (None: all), and what a counted
        query adds to the logits of the others (default: masked out)."""
        self.text_keep = None if text_keep is None else text_keep.to(torch.bool)
        self.padding_logit = float("-inf") if logit is None else logit

    def _padding(
        self,
        query: torch.Tensor,
        q_pos: torch.Tensor | slice | None,
        k_pos: torch.Tensor | slice | None,
        dtype: torch.dtype,
    ) -> torch.Tensor | None:
        """(B, 1, Q, K) additive mask of the text padding for a pass over canonical positions, or
        None without padding."""
        keep = self.text_keep
        if keep is None or bool(keep.all()):
            return None
        full = torch.ones(query.shape[0], query.shape[1], dtype=torch.bool, device=query.device)
        full[:, : keep.shape[1]] = keep.to(query.device)
        q_keep = full if q_pos is None else full[:, q_pos]
        k_keep = full if k_pos is None else full[:, k_pos]
        padded = q_keep[:, :, None] & ~k_keep[:, None, :]
        logit = max(self.padding_logit, mask_value(dtype))
        return torch.where(padded, logit, 0.0).to(dtype)[:, None]

    def _with_padding(
        self, mask: torch.Tensor | None, padding: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor | None:
        if padding is None:
            return mask
        return padding if mask is None else (mask + padding).clamp(min=mask_value(dtype))

    def _active(self, kind: type, site: Site) -> list[Any]:
        return [e for e in self.edits if isinstance(e, kind) and e.active(site, self.step, self.num_steps)]

    def observers(self, site: Site) -> list[Any]:
        """Edits that only read attention at this site."""
        return [e for e in self.edits if hasattr(e, "observe") and e.active(site, self.step, self.num_steps)]

    def modifies(self, site: Site) -> bool:
        """Whether this site's attention differs from the default processor's."""
        if self.region is not None and (self.region.base_span is not None or self._region_on(site)):
            return True
        if any(e.injects for e in self._active(FeatureInjection, site)):
            return True
        return bool(self._active(Temperature, site) or self._active(AttentionBias, site))

    def _region_on(self, site: Site) -> bool:
        return self.region is not None and self.region.active(site, self.step, self.num_steps)

    def rewrites(self, site: Site) -> bool:
        """Whether a feature injection records or writes at this site."""
        return bool(self._active(FeatureInjection, site))

    def rewrite(
        self, site: Site, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, text_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Let feature injections record or replace image-token q/k/v (canonical layout)."""
        injections = self._active(FeatureInjection, site)
        if not injections:
            return query, key, value
        tensors = {"q": query, "k": key, "v": value}
        for edit in injections:
            edit.rewrite(self, site, tensors, text_len)
        return tensors["q"], tensors["k"], tensors["v"]

    # ------------------------------------------------------------------ modifiers
    def modifiers(
        self, site: Site, batch: int, text_len: int, n_image: int, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(B,) gamma and (B, N, T) float32 bias for image-query x text-key logits, or None."""
        gamma = None
        for edit in self._active(Temperature, site):
            g = edit.gamma(self.step, self.num_steps, batch, device)
            gamma = g if gamma is None else gamma * g
        biases = self._active(AttentionBias, site)
        if not biases:
            return gamma, None

        def build() -> torch.Tensor:
            total = torch.zeros(batch, n_image, text_len, device=device)
            for edit in biases:
                placed_key = ("placed", id(edit), text_len, batch, str(device))
                if placed_key not in self.cache:  # the maps at strength 1: once per call
                    self.cache[placed_key] = edit.placed(self.grid, text_len, batch, device)
                total += edit.schedule(self.step, self.num_steps) * self.cache[placed_key]
            return total.clamp(min=mask_value(torch.float32))

        ids = tuple(id(b) for b in biases)
        return gamma, self._step_cached(("bias", ids, text_len, batch, str(device)), build)

    def _step_cached(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """Values that change with the step (scaled biases, their slices): once per step."""
        full = ("step", self.step, *key)
        if full not in self.cache:
            self.cache = {k: v for k, v in self.cache.items() if k[0] != "step" or k[1] == self.step}
            self.cache[full] = make()
        return self.cache[full]

    def _slice_bias(
        self,
        name: str,
        bias: torch.Tensor | None,
        rows: torch.Tensor | None,
        cols: torch.Tensor,
        dtype: torch.dtype,
    ) -> torch.Tensor | None:
        """The bias for one pass's image rows x text columns, in the compute dtype, once per step."""
        if bias is None:
            return None

        def make() -> torch.Tensor:
            assert bias is not None
            sub = bias if rows is None else bias[:, rows]
            return sub[:, :, cols].clamp(min=mask_value(dtype)).to(dtype)

        sliced: torch.Tensor = self._step_cached(("slice", name, id(bias), dtype), make)
        return sliced

    # ------------------------------------------------------------------ attention
    def attend(
        self, site: Site, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, text_len: int
    ) -> torch.Tensor:
        """Attention over (B, S, H, D) tensors in canonical order [text; image] with the edits."""
        self.pairs_now = 0
        out = self._attend(site, query, key, value, text_len)
        if tallying_pairs():
            record_pass("joint", self.pairs_now)
        return out

    def _attend(
        self, site: Site, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, text_len: int
    ) -> torch.Tensor:
        batch, seq = query.shape[:2]
        n_image = seq - text_len
        self.text_len = text_len
        gamma, bias = self.modifiers(site, batch, text_len, n_image, query.device)
        dtype = query.dtype
        everything = PassGeometry(seq, seq, text_len, text_len)
        all_text = torch.arange(text_len, device=query.device)
        region = self.region
        if region is None:
            sub = self._slice_bias("plain", bias, None, all_text, dtype)
            return self._run(query, key, value, None, None, everything, gamma, sub, None, "plain")
        base_pos = self._base_positions(text_len, n_image, query.device)
        if not self._region_on(site):
            if self._open_here():
                return self._regional(query, key, value, text_len, base_pos, gamma, bias, masked=False)
            if base_pos is None:
                sub = self._slice_bias("plain", bias, None, all_text, dtype)
                return self._run(query, key, value, None, None, everything, gamma, sub, None, "plain")
            n_base = base_pos.numel() - n_image
            geom = PassGeometry(seq, base_pos.numel(), text_len, n_base)
            sub = self._slice_bias("base", bias, None, base_pos[:n_base], dtype)
            view = self._base_view(base_pos, text_len)
            return self._run(query, key, value, None, view, geom, gamma, sub, None, "outside")
        return self._regional(query, key, value, text_len, base_pos, gamma, bias, masked=True)

    def _open_here(self) -> bool:
        """With a separate base stream, a block outside the region's blocks but within its steps: the
        regional pass runs there without its mask and the base pass is blended in."""
        region = self.region
        return region is not None and region.base_stream == "separate" and region.steps_on(self.step)

    def _regional(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        text_len: int,
        base_pos: torch.Tensor | None,
        gamma: torch.Tensor | None,
        bias: torch.Tensor | None,
        *,
        masked: bool,
    ) -> torch.Tensor:
        """The regional pass (with the region mask, or ``masked=False`` without it), and the base
        pass blended into image outputs. Tokens of a carried base image stream take the base
        pass's output unblended: that stream is the base prompt's alone."""
        assert self.region is not None
        out = torch.empty_like(query)
        if masked:
            entry = self._region_entry(text_len, query.device)
            order: torch.Tensor = entry["order"]
            geom: PassGeometry = entry["geom"]
            sub = self._slice_bias("regional", bias, entry["image_rows"], order[: geom.n_text_q], query.dtype)
            if self._kernel(entry, query, geom) == "segments":
                self._segments(query, key, value, entry, gamma, sub, out)
            else:
                out[:, order] = self._run(
                    query, key, value, order, order, geom, gamma, sub, entry, "regional"
                )
        else:
            order, n_text = self._open_positions(text_len, query.shape[1] - text_len, query.device)
            geom = PassGeometry(order.numel(), order.numel(), n_text, n_text)
            sub = self._slice_bias("open", bias, None, order[:n_text], query.dtype)
            out[:, order] = self._run(query, key, value, order, order, geom, gamma, sub, None, "open")
        if base_pos is None:
            return out
        n_image = query.shape[1] - text_len
        n_base = base_pos.numel() - n_image
        base_geom = PassGeometry(base_pos.numel(), base_pos.numel(), n_base, n_base)
        base_sub = self._slice_bias("base", bias, None, base_pos[:n_base], query.dtype)
        view = self._base_view(base_pos, text_len)
        base_out = self._run(query, key, value, view, view, base_geom, gamma, base_sub, None, "base")
        ratio = self.region.base_ratio
        out[:, base_pos[:n_base]] = base_out[:, :n_base]
        if self.carried:
            out[:, text_len - self.carried : text_len] = base_out[:, n_base:]
        out[:, text_len:] = (1 - ratio) * out[:, text_len:] + ratio * base_out[:, n_base:]
        return out

    def _open_positions(self, text_len: int, n_image: int, device: torch.device) -> tuple[torch.Tensor, int]:
        """Canonical positions of [regional text; image] for the unmasked regional pass, and how
        many of them are text."""
        assert self.region is not None
        key = ("open", text_len, n_image, self.carried, str(device))
        if key not in self.cache:
            text = [torch.arange(start, end) for start, end in self.region.text_spans]
            image = torch.arange(text_len, text_len + n_image)
            n_text = sum(end - start for start, end in self.region.text_spans)
            self.cache[key] = (torch.cat([*text, image]).to(device), n_text)
        positions: tuple[torch.Tensor, int] = self.cache[key]
        return positions

    def read_passes(self, site: Site, text_len: int, n_image: int, device: torch.device) -> list[ReadPass]:
        """The passes image queries take at this site, for observers that recompute attention.

        Where a base image stream is carried (``base_stream="separate"``, single-stream blocks), the base
        pass's keys are that stream's, read with the image tokens' own queries: its queries are
        the copy's, so a map read there is near that pass, not equal to it."""
        everything = torch.arange(text_len + n_image, device=device)
        if self.region is None:
            return [ReadPass(everything, text_len, None, None, 1.0)]
        base_pos = self._base_positions(text_len, n_image, device)
        n_base = 0 if base_pos is None else base_pos.numel() - n_image
        ratio = self.region.base_ratio
        if not self._region_on(site) and self._open_here():
            order, n_text = self._open_positions(text_len, n_image, device)
            if base_pos is None:
                return [ReadPass(order, n_text, None, None, 1.0)]
            return [
                ReadPass(order, n_text, None, None, 1.0 - ratio),
                ReadPass(base_pos, n_base, None, None, ratio),
            ]
        if not self._region_on(site):
            if base_pos is None:
                return [ReadPass(everything, text_len, None, None, 1.0)]
            return [ReadPass(base_pos, n_base, None, None, 1.0)]
        entry = self._region_entry(text_len, device)
        layout = entry["layout"]
        bits = layout.bits.to(device)
        key_bits = layout.keys.to(device)
        image_bits = torch.empty(n_image, dtype=bits.dtype, device=device)
        image_bits[entry["image_rows"]] = bits[layout.n_text :]
        if base_pos is None:
            return [ReadPass(entry["order"], layout.n_text, image_bits, key_bits, 1.0)]
        return [
            ReadPass(entry["order"], layout.n_text, image_bits, key_bits, 1.0 - ratio),
            ReadPass(base_pos, n_base, None, None, ratio),
        ]

    def attend_image_only(
        self, site: Site, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor | None:
        """SD3.5 ``attn2`` (image-only, (B, H, N, D)): keep image <-> image within regions.

        Returns None where the default processor's result stands (no active region here).
        """
        if self.region is None or self.text_len is None or not self._region_on(site):
            return None
        self.pairs_now = 0
        entry = self._region_entry(self.text_len, query.device)
        if "image_only" not in entry:
            layout = entry["layout"]
            bits, key_bits = layout.bits[layout.n_text :], layout.keys[layout.n_text :]
            segments = None
            if layout.segments is not None:
                n_text = layout.n_text
                segments = [(0, 0, i0 - n_text, i1 - n_text) for _, _, i0, i1 in layout.segments]
            geom = PassGeometry(bits.numel(), bits.numel(), 0, 0, bits, key_bits, segments)
            entry["image_only"] = {"geom": geom}
        sub = entry["image_only"]
        rows: torch.Tensor = entry["image_rows"]
        q, k, v = (t.transpose(1, 2) for t in (query, key, value))
        out = torch.empty_like(q)
        out[:, rows] = self._run(q, k, v, rows, rows, sub["geom"], None, None, sub, "image_only")
        if self.region.base_span is not None:
            plain = F.scaled_dot_product_attention(query, key, value).transpose(1, 2)
            self.pairs_now += query.shape[0] * query.shape[2] * key.shape[2]
            ratio = self.region.base_ratio
            out = (1 - ratio) * out + ratio * plain
        if tallying_pairs():
            record_pass("image", self.pairs_now)
        return out.transpose(1, 2)

    def _base_positions(self, text_len: int, n_image: int, device: torch.device) -> torch.Tensor | None:
        """Canonical positions of [base text; image], or None without a base prompt. Where the
        base image stream is carried (the last ``carried`` text positions), its copy stands for
        the image."""
        assert self.region is not None
        if self.region.base_span is None:
            return None
        key = ("base", text_len, n_image, self.carried, str(device))
        if key not in self.cache:
            start, end = self.region.base_span
            image_at = text_len - self.carried if self.carried else text_len
            positions = torch.cat([torch.arange(start, end), torch.arange(image_at, image_at + n_image)])
            self.cache[key] = positions.to(device)
        return self.cache[key]

    def _base_view(self, base_pos: torch.Tensor, text_len: int) -> torch.Tensor | slice:
        """A slice when [base; image] (or [base; carried copy]) is contiguous: no copy."""
        assert self.region is not None and self.region.base_span is not None
        start, end = self.region.base_span
        if self.carried:
            return slice(start, text_len) if end == text_len - self.carried else base_pos
        return slice(start, None) if end == text_len else base_pos

    def _region_entry(self, text_len: int, device: torch.device) -> dict[Any, Any]:
        """The regional pass for this call: token order, geometry, and later its mask or BlockMask."""
        assert self.region is not None
        key = ("region", text_len, self.carried, str(device))
        if key not in self.cache:
            own_text = text_len - self.carried  # a carried base image is not the regional pass's
            layout = self.region.layout(self.grid, own_text)
            n = layout.order.numel()
            geom = PassGeometry(n, n, layout.n_text, layout.n_text, layout.bits, layout.keys, layout.segments)
            order = layout.order.clone()
            order[layout.n_text :] += self.carried
            self.cache[key] = {
                "layout": layout,
                "order": order.to(device),
                "image_rows": (layout.order[layout.n_text :] - own_text).to(device),
                "geom": geom,
            }
        return self.cache[key]

    def choose_kernel(self, query: torch.Tensor, geom: PassGeometry) -> str:
        """The kernel for a pass: asked for, or chosen by mask shape and device.

        Unmasked passes always take plain SDPA. Masked ones: per-group SDPA when regions do not
        overlap (a partition: every group is one unmasked flash/efficient-attention call, and
        nothing is compiled, so a process's first regional call costs what later ones do); else
        FlexAttention with a BlockMask on CUDA (compiled once per process and shape), and on a
        CPU FlexAttention only for big, sparse masks, else dense SDPA with the additive mask.
        """
        if geom.bits_q is None:
            return "dense"
        if self.kernel == "segments" and geom.segments is not None:
            return "segments"
        if self.kernel == "auto" and geom.segments is not None:
            return "segments"
        if self.kernel in ("dense", "segments") or not flex_usable(query):
            return "dense"
        if self.kernel == "flex" or query.is_cuda:
            return "flex"
        density = float(((geom.bits_q[:, None] & geom.bits_k[None, :]) != 0).float().mean())  # type: ignore[index]
        big = geom.n_q * geom.n_k >= CPU_FLEX_MIN_PAIRS
        return "flex" if big and density <= CPU_FLEX_MAX_DENSITY else "dense"

    def _kernel(self, entry: dict[Any, Any] | None, query: torch.Tensor, geom: PassGeometry) -> str:
        """The pass's kernel, chosen once per sampling call for masked passes."""
        if entry is None:
            kernel = self.choose_kernel(query, geom)
        else:
            if ("kernel", query.dtype) not in entry:
                entry[("kernel", query.dtype)] = self.choose_kernel(query, geom)
            kernel = entry[("kernel", query.dtype)]
        self.kernels_used.add(kernel)
        return kernel

    def _segments(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        entry: dict[Any, Any],
        gamma: torch.Tensor | None,
        bias: torch.Tensor | None,
        out: torch.Tensor,
    ) -> None:
        """The partition kernel straight from canonical tensors: one gather and one write per group."""
        geom: PassGeometry = entry["geom"]
        assert geom.segments is not None
        if "groups" not in entry:
            order = entry["order"]
            entry["groups"] = [
                (torch.cat([order[t0:t1], order[i0:i1]]), (t0, t1, i0, i1))
                for t0, t1, i0, i1 in geom.segments
                if t1 > t0 or i1 > i0
            ]
        n_text = geom.n_text_q
        for index, (t0, t1, i0, i1) in entry["groups"]:
            q, k, v = (t[:, index].transpose(1, 2) for t in (query, key, value))
            sub = None if bias is None else bias[:, i0 - n_text : i1 - n_text, t0:t1]
            part = PassGeometry(index.numel(), index.numel(), t1 - t0, t1 - t0)
            padding = self._padding(query, index, index, q.dtype)
            out[:, index] = dense_attention(q, k, v, part, padding, gamma, sub).transpose(1, 2)
            self.pairs_now += q.shape[0] * index.numel() ** 2

    def _run(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        q_pos: torch.Tensor | slice | None,
        k_pos: torch.Tensor | slice | None,
        geom: PassGeometry,
        gamma: torch.Tensor | None,
        bias: torch.Tensor | None,
        entry: dict[Any, Any] | None,
        name: str,
    ) -> torch.Tensor:
        """One pass: gather queries and keys, run the chosen kernel, return (B, Q, H, D).

        ``entry`` holds what a masked pass keeps for the whole call (its kernel choice, dense
        mask or BlockMask); ``name`` keys what it keeps for one step (the mask with the bias in).
        """
        q = (query if q_pos is None else query[:, q_pos]).transpose(1, 2)
        k = (key if k_pos is None else key[:, k_pos]).transpose(1, 2)
        v = (value if k_pos is None else value[:, k_pos]).transpose(1, 2)
        kernel = self._kernel(entry, q, geom)
        batch = q.shape[0]
        padding = self._padding(query, q_pos, k_pos, q.dtype)
        if padding is not None and kernel in ("segments", "flex"):
            kernel = "dense"  # the padding mask is per row: the dense kernel takes it as it is
        if kernel == "segments":
            out = segment_attention(q, k, v, geom, gamma, bias)
            if tallying_pairs():
                assert geom.segments is not None
                self.pairs_now += batch * sum((t1 - t0 + i1 - i0) ** 2 for t0, t1, i0, i1 in geom.segments)
        elif kernel == "flex":
            assert entry is not None
            flex_key = ("flex", q.dtype)
            if flex_key not in entry:
                entry[flex_key] = FlexPass(geom, q.device, self.flex_block_size, self.flex_compile)
            out = entry[flex_key].run(q, k, v, gamma, bias)
            if tallying_pairs():
                self.pairs_now += round(batch * entry[flex_key].density() * geom.n_q * geom.n_k)
        else:
            self.pairs_now += batch * geom.n_q * geom.n_k
            mask = None
            if entry is not None:
                mask_key = ("dense", q.dtype)
                if mask_key not in entry:
                    entry[mask_key] = dense_mask(geom, q.dtype, q.device)
                mask = entry[mask_key]
            if bias is not None:
                base_mask, sub = mask, bias
                mask = self._step_cached(
                    ("mask", name, id(bias), q.dtype),
                    lambda: combine_mask(geom, base_mask, sub, q.dtype),
                )
            mask = self._with_padding(mask, padding, q.dtype)
            out = dense_attention(q, k, v, geom, mask, gamma, None)
        return out.transpose(1, 2)

    # ------------------------------------------------------------------ observers
    def observe(
        self,
        site: Site,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        output: torch.Tensor,
        text_len: int,
    ) -> None:
        """Let every observer active here read the attention (canonical order, (B, S, H, D))."""
        for observer in self.observers(site):
            observer.observe(self, site, query, key, value, output, text_len)

    def captures(self) -> list[CaptureMaps]:
        return [e for e in self.edits if isinstance(e, CaptureMaps)]
