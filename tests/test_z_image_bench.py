"""Z-Image in ``bench models``: its published geometry and the work its calls are priced at."""

from __future__ import annotations

import pytest
import torch

from scenewright.backends.z_image import ZImageBackend
from scenewright.bench.geometry import geometry, weight_bytes
from scenewright.bench.work import published_flops, work_meter
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan, PlanObject
from z_image_builders import tiny_z_image_pipeline


def test_published_z_image_turbo_geometry() -> None:
    geo = geometry("z-image")
    assert (geo.heads, geo.head_dim, geo.hidden_size) == (30, 128, 3840)
    assert geo.blocks == {"joint": 30, "refiner": 2} and geo.t5_width == 2560 and geo.t5_tokens == 512
    # 6.15B parameters (published: 6B), counted without allocating them.
    assert weight_bytes(geo, torch.bfloat16) / 2 == pytest.approx(6.15e9, rel=0.01)
    narrow = geometry("z-image", "narrow")
    assert narrow.blocks == {"joint": 2, "refiner": 1} and narrow.hidden_size == 16


def test_z_image_calls_are_counted_with_their_padding_and_regional_computes_fewer_pairs() -> None:
    backend = ZImageBackend(tiny_z_image_pipeline(), max_sequence_length=64)
    plan = Plan(
        prompt="a red apple left of a blue vase",
        objects=[
            PlanObject(name="apple", attributes=["red"], boxes=[(0.0, 0.0, 0.5, 1.0)]),
            PlanObject(name="vase", attributes=["blue"], boxes=[(0.5, 0.0, 1.0, 1.0)]),
        ],
    )
    settings = SamplingSettings(24, 32, steps=2, guidance=0.0, seed=0)  # 48 image tokens, padded to 64
    with work_meter(backend.transformer) as plain:
        run_strategy("vanilla", backend, plan, settings)
    assert plain.calls == 2 and plain.image_rows == 2 * 64
    caption = plain.token_rows // 2 - 64
    assert (
        caption % 32 == 0 and plain.attention_pairs == plain.dense_attention_pairs == 2 * (64 + caption) ** 2
    )
    with work_meter(backend.transformer) as regional:
        run_strategy("regional:inject_fraction=1", backend, plan, settings)
    # Two region prompts, the background's and the base prompt's ride along in the caption; the
    # region pass computes its groups' pairs only, plus the base pass.
    assert regional.token_rows > plain.token_rows
    assert regional.attention_pairs < regional.dense_attention_pairs
    geo = geometry("z-image", "narrow")
    assert published_flops(geo, regional) > published_flops(geo, plain) > 0
