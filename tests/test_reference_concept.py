"""ConceptAttention's paper reading against the authors' original FLUX path
(tests/fixtures/reference/concept, written by ``scripts/reference_fixtures.py concept``): the same
tiny FLUX.1 (19 double blocks), image, plan and noise give the same maps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from builders import tiny_flux_pipeline, two_box_image, two_box_plan
from scenewright.backends.flux import FluxBackend
from scenewright.errors import InvalidInputError
from scenewright.executor.explain import MapReading, paper_blocks, read_object_maps
from scenewright.executor.sampler import SamplingSettings

FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "concept" / "concept_flux.safetensors"


@pytest.fixture(scope="module")
def fixture() -> tuple[torch.Tensor, dict[str, str]]:
    assert FIXTURE.is_file(), (
        f"missing {FIXTURE}: run scripts/reference_fixtures.py concept /path/to/ConceptAttention"
    )
    with safe_open(str(FIXTURE), "pt") as handle:
        return handle.get_tensor("maps"), dict(handle.metadata())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def test_paper_reading_equals_the_authors_maps(fixture: tuple[torch.Tensor, dict[str, str]]) -> None:
    theirs, meta = fixture
    size = int(meta["size"])
    backend = FluxBackend(tiny_flux_pipeline(seed=0, double_blocks=19), max_sequence_length=512)
    image, plan = two_box_image(size), two_box_plan()
    assert meta["prompt"] == plan.prompt and meta["layers"] == "15,16,17,18"
    settings = SamplingSettings(size, size, steps=28, guidance=0.0, seed=int(meta["seed"]))
    paper = read_object_maps(backend, image, plan, settings, MapReading(concept_inputs="paper")).ownership
    assert paper.shape == theirs.shape == (3, 64, 64)
    assert correlation(paper, theirs) >= 0.999
    assert (paper - theirs).abs().max().item() < 1e-4
    # Our own inputs (contextual tokens, the scene's modulation, the later half of the blocks, half
    # the render's schedule) read other maps: the fixture tells the two readings apart.
    scene = read_object_maps(backend, image, plan, settings, MapReading()).ownership
    assert (scene - theirs).abs().max().item() > 1e-2


def test_paper_blocks_scale_the_authors_layers() -> None:
    assert list(paper_blocks(19)) == [15, 16, 17, 18]
    assert list(paper_blocks(10)) == [8, 9]
    assert list(paper_blocks(2)) == [1]


def test_bad_concept_inputs_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError, match="use one of scene, paper") as refused:
        MapReading(concept_inputs="authors")
    assert "\n" not in str(refused.value)
    with pytest.raises(InvalidInputError, match="use reader concept"):
        MapReading(reader="cross", concept_inputs="paper")
    with pytest.raises(InvalidInputError, match="use one of scene, paper"):
        MapReading.from_options({"reader": "concept", "concept_inputs": "bare"})
