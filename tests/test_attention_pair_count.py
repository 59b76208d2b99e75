"""The engine reports the (query, key) pairs its kernels compute, and the work meter prices them.

Geometry of the hand counts below: an 8x8 token grid (64 image tokens), three region prompts of
8 tokens and a base prompt of 8 (32 text tokens). The disjoint layout's regions are the top-left
quarter (16 tokens), the right half (32) and the background (the other 16).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.bench.models import DEFAULT_PROMPT
from scenewright.bench.work import work_meter
from scenewright.executor.attention import AttentionEngine, RegionMask, Sites, attention_engine
from scenewright.executor.attention.counting import PairTally, record_pass, tallying
from scenewright.executor.attention.kernels import FLEX_AVAILABLE, PassGeometry
from scenewright.executor.regional import plan_regions
from scenewright.executor.sampler import make_generator
from scenewright.planner.rules import plan_with_rules

SITE = ("double", 0)
DISJOINT = [(0, 0, 0.5, 0.5), (0.5, 0, 1, 1), None]
OVERLAPPING = [(0, 0, 0.75, 0.75), (0.25, 0.25, 1, 1), None]
TEXT, IMAGE, BATCH = 32, 64, 2
BASE_PASS = (8 + IMAGE) ** 2  # [base; image], unmasked


def _engine(kernel: str, shapes: list, block_size: int = 32) -> AttentionEngine:  # type: ignore[type-arg]
    region = RegionMask.from_lengths([8, 8, 8], shapes, base_length=8, base_ratio=0.3)
    engine = AttentionEngine([region], kernel=kernel, flex_compile=False, flex_block_size=block_size)
    engine.begin((8, 8), 1)
    return engine


def _qkv() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(BATCH, TEXT + IMAGE, 2, 16, generator=gen) for _ in range(3)]


def _attend_tallied(engine: AttentionEngine) -> PairTally:
    with tallying() as tally, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager FlexAttention warns that it is not fused
        engine.attend(SITE, *_qkv(), TEXT)
    return tally


@pytest.mark.parametrize(
    ("kernel", "regional_pass"),
    [
        ("segments", (8 + 16) ** 2 + (8 + 32) ** 2 + (8 + 16) ** 2),  # each group with itself
        ("auto", (8 + 16) ** 2 + (8 + 32) ** 2 + (8 + 16) ** 2),  # a partition: the same
        ("dense", (24 + IMAGE) ** 2),  # the additive mask: every pair is computed
    ],
)
def test_a_regional_block_counts_the_pairs_its_kernel_computes(kernel: str, regional_pass: int) -> None:
    tally = _attend_tallied(_engine(kernel, DISJOINT))
    assert (tally.joint_passes, tally.image_passes) == (1, 0)
    assert tally.joint_pairs == BATCH * (regional_pass + BASE_PASS)


@pytest.mark.skipif(not FLEX_AVAILABLE, reason="this torch has no FlexAttention")
def test_a_block_sparse_pass_counts_the_blocks_its_mask_keeps() -> None:
    engine = _engine("flex", OVERLAPPING, block_size=8)  # 88 tokens: 11 x 11 blocks, none padded
    tally = _attend_tallied(engine)
    geom = next(e for key, e in engine.cache.items() if key[0] == "region")["geom"]
    allowed = (geom.bits_q[:, None] & geom.bits_k[None, :]) != 0
    kept = int(allowed.reshape(11, 8, 11, 8).any(dim=3).any(dim=1).sum())
    assert 0 < kept < 11 * 11
    assert tally.joint_pairs == BATCH * (kept * 8 * 8 + BASE_PASS)


def test_after_the_inject_steps_and_without_regions_the_pass_is_counted_whole() -> None:
    window = Sites.make(steps=(0, 1))
    region = RegionMask.from_lengths([8, 8, 8], DISJOINT, base_length=8, sites=window)
    later = AttentionEngine([region], kernel="auto")
    later.begin((8, 8), 4)
    later.step = 2  # past the region's window
    plain = AttentionEngine([], kernel="auto")
    plain.begin((8, 8), 1)
    # Outside the window every query reads [base; image]; with no edit, the whole sequence.
    assert _attend_tallied(later).joint_pairs == BATCH * (TEXT + IMAGE) * (8 + IMAGE)
    assert _attend_tallied(plain).joint_pairs == BATCH * (TEXT + IMAGE) ** 2


def test_nothing_is_kept_without_an_open_tally_and_nested_tallies_each_see_every_pass() -> None:
    record_pass("joint", 5)  # no tally open: dropped
    with tallying() as outer:
        record_pass("joint", 7)
        with tallying() as inner:
            record_pass("image", 3)
    assert (outer.joint_pairs, outer.joint_passes, outer.image_pairs, outer.image_passes) == (7, 1, 3, 1)
    assert (inner.joint_pairs, inner.image_pairs) == (0, 3)
    with pytest.raises(ValueError, match="kind"):
        PairTally().add("cross", 1)


def _one_forward(backend: Backend, region: RegionMask, height: int, width: int):  # type: ignore[no-untyped-def]
    encoding = backend.encode_prompts(["three red apples and a blue vase"])
    noise = backend.prepare_noise(1, height, width, make_generator(0))
    t = backend.set_timesteps(backend.new_scheduler(), 4, height, width)[1]
    transformer = backend.transformer
    with attention_engine(backend, [region], kernel="auto") as engine, torch.no_grad():
        engine.begin(backend.token_grid(height, width), 1)
        with work_meter(transformer) as work, tallying() as tally:
            backend.forward(noise, t, encoding, height=height, width=width, guidance=3.5)
    return work, tally


@pytest.mark.parametrize("family", ["flux", "sd3.5"])
def test_the_meter_prices_a_regional_call_by_the_pairs_computed(family: str) -> None:
    """On a tiny pipeline with every block regional, the meter's pairs a block are the engine's
    count divided by the blocks, below the dense count; token rows are unchanged."""
    if family == "flux":
        backend: Backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
        height, width = 32, 48
    else:
        backend = SD3Backend(tiny_sd3_pipeline(sd35=True), max_sequence_length=16)
        height, width = 32, 64
    text_len = backend.encode_prompts(["three red apples and a blue vase"]).embeds.shape[1]
    half = text_len // 2
    region = RegionMask(text_spans=[(0, half), (half, text_len)], shapes=[(0, 0, 0.5, 0.5), None])
    work, tally = _one_forward(backend, region, height, width)
    blocks = len(backend.transformer.transformer_blocks) + len(
        getattr(backend.transformer, "single_transformer_blocks", ())
    )
    assert tally.joint_passes == blocks
    assert work.calls == 1
    assert work.attention_pairs == pytest.approx(tally.joint_pairs / blocks)
    assert work.attention_pairs < work.dense_attention_pairs
    if family == "sd3.5":
        assert tally.image_passes >= 1
        assert work.image_pairs == pytest.approx(tally.image_pairs / tally.image_passes)
        assert work.image_pairs < work.dense_image_pairs


def test_the_benchmark_plan_is_a_partition_at_1024_px_so_regional_compiles_nothing() -> None:
    """``bench models``' default plan at FLUX's 64x64 tokens: its 4 boxes do not overlap, so the
    region pass is per-group SDPA on every device (no FlexAttention to compile on a first call),
    and its counted pairs are what a GPU computes."""
    regions = plan_regions(plan_with_rules(DEFAULT_PROMPT).plan)
    assert len(regions) == 4
    text_spans = [(8 * i, 8 * i + 8) for i in range(len(regions) + 1)]
    mask = RegionMask(text_spans=text_spans, shapes=[r.box for r in regions] + [None])
    layout = mask.layout((64, 64), 8 * (len(regions) + 1))
    assert layout.segments is not None
    engine = AttentionEngine([mask], kernel="auto")
    seq = layout.order.numel()
    geom = PassGeometry(seq, seq, layout.n_text, layout.n_text, layout.bits, layout.keys, layout.segments)
    assert engine.choose_kernel(torch.zeros(1, 1, seq, 128), geom) == "segments"


def test_the_meter_counts_the_base_image_copy_regional_carries() -> None:
    """Regional's authors' structure carries a copy of the image tokens through the single-stream
    blocks during its regional steps: rows the transformer's input does not show, which the meter
    adds (averaged over the blocks) and the shared stream does not have."""
    from scenewright.executor.regional import render_regional
    from scenewright.executor.sampler import SamplingSettings

    backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    plan = plan_with_rules("a red circle left of a blue square").plan
    settings = SamplingSettings(32, 32, steps=4, guidance=3.5, seed=0)
    rows = {}
    for stream in ("separate", "shared"):
        with work_meter(backend.transformer) as work:
            render_regional(backend, plan, settings, base_stream=stream)
        rows[stream] = work.token_rows
    image_tokens = (32 // 4) ** 2  # the tiny VAE halves twice: 64 px are 16x16 tokens
    single, blocks = 2, 4
    per_call = image_tokens * single / blocks  # batch 1: FLUX.1 is guidance-distilled
    carried_calls = (rows["separate"] - rows["shared"]) / per_call
    assert carried_calls == round(carried_calls) and 1 <= carried_calls < settings.steps
