"""The engine's processors reproduce diffusers' defaults, and capture never changes the image."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import JointAttnProcessor2_0
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.executor.attention import (
    AttentionBias,
    CaptureMaps,
    RegionMask,
    Sites,
    Temperature,
    attention_engine,
    constant,
)
from scenewright.executor.attention import engine as engine_module
from scenewright.executor.sampler import SamplingSettings, sample

PROMPT = "three red apples left of a blue vase"


@pytest.fixture(scope="module")
def flux() -> FluxBackend:
    return FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)


@pytest.fixture(scope="module")
def sd3() -> SD3Backend:
    return SD3Backend(tiny_sd3_pipeline(), max_sequence_length=16)


@pytest.fixture(scope="module")
def sd35() -> SD3Backend:
    return SD3Backend(tiny_sd3_pipeline(sd35=True), max_sequence_length=16)


SETTINGS = {"flux": SamplingSettings(32, 48, 3, 3.5, seed=1), "sd3": SamplingSettings(32, 64, 3, 5.0, seed=1)}


def _cases(flux: FluxBackend, sd3: SD3Backend, sd35: SD3Backend) -> list[tuple[Backend, SamplingSettings]]:
    return [(flux, SETTINGS["flux"]), (sd3, SETTINGS["sd3"]), (sd35, SETTINGS["sd3"])]


def _latents(backend: Backend, settings: SamplingSettings, edits=(), **kwargs) -> torch.Tensor:  # type: ignore[no-untyped-def]
    encoding = backend.encode_prompts([PROMPT])
    if edits is None:
        return sample(backend, encoding, settings, progress=False, decode=False).latents
    with attention_engine(backend, list(edits), **kwargs) as engine:
        return sample(backend, encoding, settings, hooks=[engine], progress=False, decode=False).latents


def test_no_edit_output_equals_default_processors(flux, sd3, sd35) -> None:  # type: ignore[no-untyped-def]
    for backend, settings in _cases(flux, sd3, sd35):
        reference = _latents(backend, settings, None)
        ours = _latents(backend, settings, ())
        assert (ours - reference).abs().max().item() < 1e-5
        # Inactive edits (outside their steps) leave the default path untouched too.
        idle = [Temperature(schedule=constant(1.5), sites=Sites.make(steps=(99, 100)))]
        assert (_latents(backend, settings, idle) - reference).abs().max().item() < 1e-5


def test_processors_are_restored_after_the_context(flux, sd35) -> None:  # type: ignore[no-untyped-def]
    for backend, default in ((flux, FluxAttnProcessor), (sd35, JointAttnProcessor2_0)):
        before = backend.transformer.attn_processors
        with attention_engine(backend, []):
            assert all(type(p) is not default for p in backend.transformer.attn_processors.values())
        after = backend.transformer.attn_processors
        assert after.keys() == before.keys()
        assert all(after[k] is before[k] for k in before)


def test_capture_only_is_bit_identical_and_maps_are_distributions(flux, sd3, sd35) -> None:  # type: ignore[no-untyped-def]
    for backend, settings in _cases(flux, sd3, sd35):
        reference = _latents(backend, settings, None)
        capture = CaptureMaps(tokens=[3, 7], sites=Sites.make(steps=(0, 2)))
        assert torch.equal(_latents(backend, settings, [capture]), reference)
        rows, cols = backend.token_grid(settings.height, settings.width)
        maps = capture.maps()
        batch = 2 if backend.family == "sd3" else 1  # CFG doubles the batch
        assert maps.shape == (batch, 2, rows, cols)
        assert bool((maps >= 0).all()) and bool((maps <= 1).all())


def test_temperature_one_is_identity_and_other_values_change_the_image(flux, sd3, sd35) -> None:  # type: ignore[no-untyped-def]
    for backend, settings in _cases(flux, sd3, sd35):
        reference = _latents(backend, settings, None)
        same = _latents(backend, settings, [Temperature(schedule=constant(1.0))])
        assert (same - reference).abs().max().item() < 1e-5
        hotter = _latents(backend, settings, [Temperature(schedule=constant(1.25))])
        assert (hotter - reference).abs().max().item() > 1e-4


def test_masks_and_biases_are_built_once_per_sampling_call(flux, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = {"mask": 0, "placed": 0}
    real_mask = engine_module.dense_mask
    real_placed = AttentionBias.placed

    def counting_mask(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["mask"] += 1
        return real_mask(*args, **kwargs)

    def counting_placed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["placed"] += 1
        return real_placed(self, *args, **kwargs)

    monkeypatch.setattr(engine_module, "dense_mask", counting_mask)
    monkeypatch.setattr(AttentionBias, "placed", counting_placed)
    region = RegionMask.from_lengths([8, 8], [(0, 0, 0.5, 1), None])
    bias = AttentionBias(maps={3: torch.ones(4, 4)})
    settings = SamplingSettings(32, 48, 3, 3.5, seed=1)  # 3 steps x (2 double + 2 single) blocks
    _latents(flux, settings, [region, bias], kernel="dense")
    assert calls == {"mask": 1, "placed": 1}
