"""Every strategy and the attention maps on a tiny random Z-Image: they run through the engine's
single-stream processor and change the image where they promise to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scenewright.backends.z_image import ZImageBackend
from scenewright.executor.attention import CaptureMaps, attention_engine
from scenewright.executor.sampler import SamplingSettings, sample
from scenewright.executor.strategies import run_strategy, strategy_names
from scenewright.planner.plan import Plan, PlanObject, PlanRelation
from z_image_builders import tiny_z_image_pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend() -> ZImageBackend:
    return ZImageBackend(tiny_z_image_pipeline(), max_sequence_length=64)


def _plan() -> Plan:
    return Plan(
        prompt="two red apples left of a blue vase",
        objects=[
            PlanObject(
                name="apple", count=2, attributes=["red"], boxes=[(0.0, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 1.0)]
            ),
            PlanObject(name="vase", attributes=["blue"], boxes=[(0.5, 0.2, 1.0, 0.8)]),
        ],
        relations=[PlanRelation(subject=0, relation="left of", object=1)],
    )


SETTINGS = SamplingSettings(32, 32, steps=4, guidance=0.0, seed=5)


@pytest.fixture(scope="module")
def vanilla(backend: ZImageBackend) -> torch.Tensor:
    images: torch.Tensor = run_strategy("vanilla", backend, _plan(), SETTINGS).sample.images
    return images


@pytest.mark.parametrize(
    "strategy",
    [
        *[s for s in strategy_names() if s != "vanilla"],
        "regional:image_attention=context:text_boost=2",
        "stitch:object_pass=box",
        "stitch:object_pass=free",
        "numina:pipeline=ours",
        "regional+taca",
    ],
)
def test_every_strategy_runs_on_z_image_and_edits_the_image(
    backend: ZImageBackend, vanilla: torch.Tensor, strategy: str
) -> None:
    result = run_strategy(strategy, backend, _plan(), SETTINGS)
    images = result.sample.images
    assert images.shape == (1, 3, 32, 32) and np.isfinite(images.numpy()).all()
    if strategy.split(":")[0] in ("taca", "regional", "regional+taca", "stitch"):
        assert (images - vanilla).abs().max().item() > 1e-3
    if strategy.startswith("stitch"):
        expected = "free" if "free" in strategy or "auto" in strategy else "box"
        assert result.report["object_pass"] == expected


def test_a_vanilla_engine_changes_nothing(backend: ZImageBackend, vanilla: torch.Tensor) -> None:
    """Maps read at every block (canonical [caption; image] views) leave the image as it was, and
    lie on the image: their sum over the grid is the attention image queries give the nouns."""
    encoding = backend.encode_prompts([_plan().global_prompt])
    capture = CaptureMaps(tokens=encoding.tokens_for(0, "apples") + encoding.tokens_for(0, "vase"))
    with attention_engine(backend, [capture]) as engine:
        observed = sample(backend, encoding, SETTINGS, hooks=[engine], progress=False)
    plain = sample(backend, encoding, SETTINGS, progress=False)
    assert (observed.images - plain.images).abs().max().item() < 1e-5
    maps = capture.maps()
    assert maps.shape[-2:] == (8, 8) and torch.isfinite(maps).all() and float(maps.max()) > 0


def test_taca_on_image_pad_sizes(backend: ZImageBackend) -> None:
    """24x32 px is 6x8 = 48 image tokens, padded by the model to 64: edits skip the pad tokens."""
    settings = SamplingSettings(24, 32, steps=3, guidance=0.0, seed=2)
    plain = run_strategy("vanilla", backend, _plan(), settings).sample.images
    for strategy in ("taca:gamma=1.5", "regional"):
        edited = run_strategy(strategy, backend, _plan(), settings).sample.images
        assert np.isfinite(edited.numpy()).all() and (edited - plain).abs().max().item() > 1e-4


def test_object_maps_read_cross_attention_and_concept_attention_is_refused(backend: ZImageBackend) -> None:
    """One shared stream carries no concept stream of its own: the maps are cross-attention on each
    object's nouns over every block, and asking for ConceptAttention is one line."""
    from scenewright.errors import InvalidInputError
    from scenewright.executor.explain import MapReading, map_reading, read_object_maps

    reading = map_reading(backend)
    assert (reading.reader, reading.blocks) == ("cross", "all")
    image = backend.to_pil(run_strategy("vanilla", backend, _plan(), SETTINGS).sample.images)[0]
    maps = read_object_maps(backend, image, _plan(), SETTINGS)
    assert maps.attention.shape == (2, 8, 8) and torch.isfinite(maps.attention).all()
    assert float(maps.ownership[:2].max()) > 0
    with pytest.raises(InvalidInputError, match=r"maps\.reader"):
        read_object_maps(backend, image, _plan(), SETTINGS, MapReading(reader="concept"))


@pytest.mark.parametrize("strategy", ["regional", "stitch:object_pass=box", "numina:pipeline=ours", "taca"])
def test_strategies_run_on_a_bfloat16_z_image(strategy: str) -> None:
    """The pipeline keeps float32 latents around a bfloat16 model; the strategies' edits follow."""
    half = ZImageBackend(tiny_z_image_pipeline().to(torch.bfloat16), max_sequence_length=64)
    result = run_strategy(strategy, half, _plan(), SETTINGS)
    assert result.sample.latents.dtype == torch.float32
    assert np.isfinite(result.sample.images.float().numpy()).all()
