"""TACA's defaults against the authors' code (tests/fixtures/reference/taca, written by
``scripts/reference_fixtures.py taca``): the same tiny FLUX.1, prompt and noise give the same
final latents."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from builders import tiny_flux_pipeline
from scenewright.backends.flux import FluxBackend
from scenewright.executor.attention import Edit, attention_engine
from scenewright.executor.sampler import SamplingSettings, sample
from scenewright.executor.taca import taca_edit

FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "taca" / "taca_flux.safetensors"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def fixture() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    assert FIXTURE.is_file(), f"missing {FIXTURE}: run scripts/reference_fixtures.py taca /path/to/TACA"
    with safe_open(str(FIXTURE), "pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata())  # noqa: SIM118 (no __iter__)


@pytest.fixture(scope="module")
def backend() -> FluxBackend:
    return FluxBackend(tiny_flux_pipeline(seed=0), max_sequence_length=512)


def our_latents(
    backend: FluxBackend, meta: dict[str, str], noise: torch.Tensor, steps: int, edits: list[Edit]
) -> torch.Tensor:
    size = int(meta["size"])
    settings = SamplingSettings(
        size, size, steps=steps, guidance=float(meta["guidance"]), seed=int(meta["seed"])
    )
    encoding = backend.encode_prompts([meta["prompt"]])
    with attention_engine(backend, edits) as engine:
        run = sample(
            backend, encoding, settings, hooks=[engine], latents=noise.clone(), progress=False, decode=False
        )
    return run.latents


@pytest.mark.parametrize("steps", [4, 6])
def test_paper_mode_equals_the_authors_pipeline(
    backend: FluxBackend, fixture: tuple[dict[str, torch.Tensor], dict[str, str]], steps: int
) -> None:
    tensors, meta = fixture
    theirs = tensors[f"latents_{steps}_steps"]
    ours = our_latents(backend, meta, tensors["noise"], steps, [taca_edit()])
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() < TOLERANCE
    # The fixture tells the schedules apart: no temperature, or 10% of the steps, land far away.
    plain = our_latents(backend, meta, tensors["noise"], steps, [])
    share = our_latents(backend, meta, tensors["noise"], steps, [taca_edit(1.2, early_fraction=0.1)])
    assert (plain - theirs).abs().max().item() > 100 * TOLERANCE
    assert (share - theirs).abs().max().item() > 100 * TOLERANCE
