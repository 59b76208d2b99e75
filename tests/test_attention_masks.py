"""Mask and bias semantics, tested rather than assumed, on both kernels and in bf16."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.executor.attention import (
    AttentionBias,
    AttentionEngine,
    RegionMask,
    Temperature,
    attention_engine,
    constant,
    mask_value,
    region_token_masks,
)
from scenewright.executor.attention.kernels import FLEX_AVAILABLE
from scenewright.executor.attention.masks import RegionLayout
from scenewright.executor.sampler import make_generator

SITE = ("double", 0)


def _qkv(batch: int, seq: int, heads: int = 2, dim: int = 32, dtype=torch.float32, seed: int = 0):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, seq, heads, dim, generator=gen).to(dtype) for _ in range(3)]


def test_layout_follows_the_regional_prompting_rules() -> None:
    # 2x4 grid; region 0 = left half, region 1 = top-right quarter; bottom-right is uncovered.
    masks = region_token_masks([(0, 0, 0.5, 1), (0.5, 0, 1, 0.5)], (2, 4))
    assert masks.int().tolist() == [[1, 1, 0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0, 0, 0]]
    layout = RegionLayout.build([(0, 2), (2, 3)], masks, text_len=3)
    allowed = layout.allowed()
    position = {int(p): i for i, p in enumerate(layout.order)}

    def may(a: int, b: int) -> bool:
        return bool(allowed[position[a], position[b]])

    text0, text1 = 0, 2
    img = [3 + i for i in range(8)]
    assert may(text0, 1) and not may(text0, text1)  # text i <-> text i only
    assert may(text0, img[0]) and not may(text0, img[2])  # text i -> its region
    assert may(img[5], text0) and not may(img[5], text1)  # region -> its text
    assert may(img[0], img[5]) and not may(img[0], img[2])  # image <-> image within a region
    assert may(img[6], img[7]) and not may(img[6], img[0])  # uncovered: only with each other,
    assert not may(img[7], text0) and not may(img[7], text1)  # and with no text at all
    # A background region (shape None) takes exactly the uncovered tokens.
    with_bg = region_token_masks([(0, 0, 0.5, 1), (0.5, 0, 1, 0.5), None], (2, 4))
    assert with_bg[2].int().tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    # Pixel masks are resized to the grid with hard edges.
    pixels = torch.zeros(16, 32)
    pixels[:, 16:] = 1
    assert region_token_masks([pixels], (2, 4))[0].int().tolist() == [0, 0, 1, 1, 0, 0, 1, 1]


def _perturbed_forward(
    backend: Backend, region: RegionMask, height: int, width: int, region_span: tuple[int, int], kernel: str
):  # type: ignore[no-untyped-def]
    encoding = backend.encode_prompts(["three red apples and a blue vase"])
    text_len = encoding.embeds.shape[1]
    halves = encoding.embeds  # the region prompts are the same encoder output, split in two
    noise = backend.prepare_noise(1, height, width, make_generator(0))
    t = backend.set_timesteps(backend.new_scheduler(), 4, height, width)[1]
    outputs = []
    for delta in (0.0, 1.0):
        embeds = halves.clone()
        embeds[:, region_span[0] : region_span[1]] += delta * torch.randn_like(
            embeds[:, region_span[0] : region_span[1]]
        )
        encoding.embeds = embeds
        with attention_engine(backend, [region], kernel=kernel) as engine, torch.no_grad():
            engine.begin(backend.token_grid(height, width), 1)
            out = backend.forward(noise, t, encoding, height=height, width=width, guidance=3.5)
        outputs.append(backend.image_tokens(out)[0])
    assert text_len == region.text_spans[-1][1]
    return outputs


@pytest.mark.parametrize("family", ["flux", "sd3", "sd3.5"])
def test_perturbing_region_a_prompt_changes_nothing_outside_region_a(family: str) -> None:
    if family == "flux":
        backend: Backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
        height, width, text_len = 32, 48, 16
    else:
        backend = SD3Backend(tiny_sd3_pipeline(sd35=family == "sd3.5"), max_sequence_length=16)
        height, width, text_len = 32, 64, 77 + 16
    a_end = text_len // 2
    # Region A: the top-left box; region B: everything else (a background region).
    region = RegionMask(text_spans=[(0, a_end), (a_end, text_len)], shapes=[(0, 0, 0.5, 0.5), None])
    # Disjoint regions: "auto" takes the per-group kernel on a CPU; SD3 also runs the masked one.
    kernel = "dense" if family == "sd3" else "auto"
    clean, perturbed = _perturbed_forward(backend, region, height, width, (0, a_end), kernel)
    inside = region_token_masks(region.shapes, backend.token_grid(height, width))[0]
    changed = (clean - perturbed).abs().amax(dim=-1)
    assert changed[~inside].max().item() < 1e-6  # every block masked: nothing leaks out of A
    assert changed[inside].max().item() > 1e-4  # and A really follows its own prompt


def test_minus_inf_bias_on_a_token_equals_removing_it() -> None:
    text_len, grid = 6, (4, 4)
    n = grid[0] * grid[1]
    q, k, v = _qkv(2, text_len + n)
    spatial = torch.zeros(grid)
    spatial[:, :2] = float("-inf")  # only the left half of the image loses token 2
    engine = AttentionEngine([AttentionBias(maps={2: spatial})], kernel="dense")
    engine.begin(grid, 1)
    out = engine.attend(SITE, q, k, v, text_len)
    keep = [i for i in range(text_len + n) if i != 2]
    removed = F.scaled_dot_product_attention(
        q.transpose(1, 2), k[:, keep].transpose(1, 2), v[:, keep].transpose(1, 2)
    ).transpose(1, 2)
    plain = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(
        1, 2
    )
    left = (torch.arange(n) % grid[1]) < 2
    image_out = out[:, text_len:]
    assert torch.allclose(image_out[:, left], removed[:, text_len:][:, left], atol=1e-6)
    assert torch.allclose(image_out[:, ~left], plain[:, text_len:][:, ~left], atol=1e-6)
    assert torch.allclose(out[:, :text_len], plain[:, :text_len], atol=1e-6)  # text queries untouched


def test_temperature_multiplies_image_query_text_key_logits() -> None:
    text_len, grid = 5, (3, 5)
    q, k, v = _qkv(1, text_len + 15, dim=16)
    engine = AttentionEngine([Temperature(schedule=constant(1.3))], kernel="dense")
    engine.begin(grid, 1)
    out = engine.attend(SITE, q, k, v, text_len)
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / 4.0
    logits[:, :, text_len:, :text_len] *= 1.3
    expected = torch.einsum("bhqk,bkhd->bqhd", logits.softmax(-1), v)
    assert torch.allclose(out, expected, atol=1e-5)


DISJOINT = [(0, 0, 0.5, 0.5), (0.5, 0, 1, 1), None]
OVERLAPPING = [(0, 0, 0.75, 0.75), (0.25, 0.25, 1, 1), None]


def _region_bias_engine(
    kernel: str, dtype: torch.dtype = torch.float32, shapes=DISJOINT
) -> tuple[AttentionEngine, int]:
    region = RegionMask.from_lengths([8, 8, 8], shapes, base_length=8, base_ratio=0.3)
    spatial = torch.zeros(8, 8)
    spatial[:4] = float("-inf")
    spatial[4:] = 0.8
    bias = AttentionBias(maps={1: spatial, 12: spatial.flip(0)})
    engine = AttentionEngine(
        [region, bias, Temperature(schedule=constant(1.2))],
        kernel=kernel,
        flex_compile=False,
        flex_block_size=32,
    )
    engine.begin((8, 8), 1)
    return engine, 32


def test_masked_logits_stay_finite_in_half_precision() -> None:
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.isfinite(torch.tensor(mask_value(dtype), dtype=dtype))
        assert torch.isfinite(torch.tensor(2 * mask_value(dtype), dtype=torch.float32))
        engine, text_len = _region_bias_engine("dense", dtype)
        q, k, v = _qkv(2, text_len + 64, dtype=dtype)
        out = engine.attend(SITE, q, k, v, text_len)
        assert out.dtype == dtype and bool(torch.isfinite(out).all())
        entry = next(e for key, e in engine.cache.items() if key[0] == "region")
        assert bool(torch.isfinite(entry[("dense", dtype)]).all())


@pytest.mark.skipif(not FLEX_AVAILABLE, reason="this torch has no FlexAttention")
@pytest.mark.parametrize("shapes", [DISJOINT, OVERLAPPING], ids=["disjoint", "overlapping"])
def test_dense_and_block_sparse_kernels_agree(shapes) -> None:  # type: ignore[no-untyped-def]
    q, k, v = _qkv(2, 32 + 64, heads=2, dim=16)
    engines = {name: _region_bias_engine(name, shapes=shapes)[0] for name in ("dense", "flex", "segments")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager FlexAttention warns that it is not fused
        for step in range(2):  # the second call reuses the cached BlockMask and score buffers
            outs = {name: e.attend(SITE, q, k, v, 32) for name, e in engines.items()}
            scale = outs["dense"].abs().max().item()
            for name in ("flex", "segments"):
                assert (outs[name] - outs["dense"]).abs().max().item() <= 1e-3 * scale, name
            for e in engines.values():
                e.step = step + 1
    assert engines["flex"].kernels_used == {"dense", "flex"}  # the unmasked base pass is plain SDPA
    disjoint = shapes is DISJOINT
    assert engines["segments"].kernels_used == ({"dense", "segments"} if disjoint else {"dense"})
    # "auto" on a CPU: per-group SDPA for a partition, the additive mask for small overlapping ones.
    auto, _ = _region_bias_engine("auto", shapes=shapes)
    auto.attend(SITE, q, k, v, 32)
    assert auto.kernels_used == ({"dense", "segments"} if disjoint else {"dense"})
