"""Every strategy and both map readers on tiny random FLUX.2 dev and klein pipelines: plumbing and
shapes, and that each edit changes the image where it should (random weights: not quality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from builders_flux2 import tiny_flux2_backend
from scenewright.backends.flux2 import Flux2Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.explain import MapReading, read_object_maps
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy, strategy_names
from test_strategies_families import _plan

SETTINGS = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=5)


@pytest.fixture(scope="module")
def dev() -> Flux2Backend:
    return tiny_flux2_backend("dev")


@pytest.fixture(scope="module")
def klein_base() -> Flux2Backend:
    return tiny_flux2_backend("klein-base")


@pytest.fixture(scope="module")
def dev_vanilla(dev: Flux2Backend) -> torch.Tensor:
    return run_strategy("vanilla", dev, _plan(), SETTINGS).sample.images


@pytest.mark.parametrize(
    "strategy",
    [
        *(s for s in strategy_names() if s != "vanilla"),
        "stitch:object_pass=box",
        "stitch:object_pass=free",
        "regional:mode=paper",
    ],
)
def test_every_strategy_runs_on_flux2_and_changes_the_image(
    dev: Flux2Backend, dev_vanilla: torch.Tensor, strategy: str
) -> None:
    result = run_strategy(strategy, dev, _plan(), SETTINGS)
    images = result.sample.images
    assert images.shape == (1, 3, 32, 32) and torch.isfinite(images).all()
    assert not torch.equal(images, dev_vanilla)
    if strategy.startswith("stitch"):
        expected = "free" if "object_pass=free" in strategy else "box"
        assert result.report["object_pass"] == expected and result.report["objects"] == 3


@pytest.mark.parametrize("strategy", ["regional", "numina", "stitch:object_pass=box", "taca", "refine"])
def test_strategies_run_on_klein_with_cfg(klein_base: Flux2Backend, strategy: str) -> None:
    """klein base guides with CFG: every edit sees the [unconditional; conditional] batch."""
    plain = run_strategy("vanilla", klein_base, _plan(), SETTINGS).sample.images
    result = run_strategy(strategy, klein_base, _plan(), SETTINGS)
    assert torch.isfinite(result.sample.images).all()
    assert not torch.equal(result.sample.images, plain)


@pytest.mark.parametrize("reader", ["concept", "cross"])
def test_object_maps_on_flux2(dev: Flux2Backend, reader: str) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    maps = read_object_maps(dev, image, _plan(), SETTINGS, MapReading(reader=reader))
    objects = len(_plan().objects)
    assert maps.attention.shape == (objects, 8, 8)
    assert maps.ownership.shape[-2:] == (8, 8) and maps.ownership.shape[0] >= objects
    assert torch.allclose(maps.ownership.sum(dim=0), torch.ones(8, 8), atol=1e-4)


def test_per_box_pooled_vectors_are_refused_at_run_time_too(dev: Flux2Backend) -> None:
    with pytest.raises(InvalidInputError, match="pooled"):
        run_strategy("regional:pooled=box", dev, _plan(), SETTINGS)
