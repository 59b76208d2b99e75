"""Each box's own pooled vector, applied per token inside FLUX-class blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from builders import two_box_plan
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import ConceptAttention
from scenewright.executor.explain import concept_vectors
from scenewright.executor.regional import render_regional
from scenewright.executor.regional.region_pooled import region_pooled, token_regions
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan


@pytest.fixture(scope="module")
def backend() -> TinyBackend:
    return TinyBackend.random(TinyConfig(double_blocks=2, single_blocks=2, text_layers=1), seed=5)


def velocity(backend: TinyBackend, prompts: list[str], seed: int = 1) -> torch.Tensor:
    latents = backend.prepare_noise(len(prompts), 32, 32, torch.Generator().manual_seed(seed))
    encoding = backend.encode_prompts(prompts)
    with torch.no_grad():
        return backend.forward(latents, torch.full((len(prompts),), 700.0), encoding, height=32, width=32)


def test_tokens_belong_to_the_smallest_box_that_holds_them() -> None:
    index = token_regions([(0.0, 0.0, 1.0, 0.5), (0.0, 0.0, 0.5, 0.5)], (4, 4)).reshape(4, 4)
    assert index.tolist() == [[2, 2, 1, 1], [2, 2, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_every_box_given_the_scene_s_vector_changes_nothing(backend: TinyBackend) -> None:
    plain = velocity(backend, ["a red circle and a blue square"])
    pooled = backend.encode_prompts(["a red circle and a blue square"]).pooled
    regions = token_regions([(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)], backend.token_grid(32, 32))
    with region_pooled(backend, pooled, pooled.expand(2, -1), regions):
        hooked = velocity(backend, ["a red circle and a blue square"])
    assert torch.allclose(hooked, plain, atol=1e-5)


def test_a_box_over_the_whole_canvas_renders_as_its_own_prompt_would(backend: TinyBackend) -> None:
    scene, own = "a red circle and a blue square", "a blue square"
    encodings = backend.encode_prompts([scene, own])
    # The text tokens stay the scene's; only the pooled vector is the box's.
    swapped = type(encodings)(
        prompts=[scene], embeds=encodings.embeds[:1], pooled=encodings.pooled[1:], words=encodings.words[:1]
    )
    latents = backend.prepare_noise(1, 32, 32, torch.Generator().manual_seed(1))
    t = torch.full((1,), 700.0)
    with torch.no_grad():
        expected = backend.forward(latents, t, swapped, height=32, width=32)
        everywhere = token_regions([(0.0, 0.0, 1.0, 1.0)], backend.token_grid(32, 32))
        text = torch.ones(encodings.embeds.shape[1], dtype=torch.long)
        with region_pooled(backend, encodings.pooled[:1], encodings.pooled[1:], everywhere, text):
            hooked = backend.forward(latents, t, backend.encode_prompts([scene]), height=32, width=32)
        plain = backend.forward(latents, t, backend.encode_prompts([scene]), height=32, width=32)
    assert torch.allclose(hooked, expected, atol=1e-5)
    assert not torch.allclose(hooked, plain, atol=1e-3)


def test_only_the_box_s_tokens_and_the_conditional_rows_change(backend: TinyBackend) -> None:
    scene, own, negative = "a red circle and a blue square", "a blue square", ""
    encodings = backend.encode_prompts([negative, scene, own])
    batch = type(encodings)(
        prompts=[negative, scene],
        embeds=encodings.embeds[:2],
        pooled=encodings.pooled[:2],
        words=encodings.words[:2],
    )
    latents = backend.prepare_noise(1, 32, 32, torch.Generator().manual_seed(1)).expand(2, -1, -1).clone()
    t = torch.full((2,), 700.0)
    regions = token_regions([(0.5, 0.5, 1.0, 1.0)], backend.token_grid(32, 32))
    with torch.no_grad():
        plain = backend.forward(latents, t, batch, height=32, width=32)
        with region_pooled(backend, encodings.pooled[1:2], encodings.pooled[2:], regions):
            hooked = backend.forward(latents, t, batch, height=32, width=32)
    assert torch.allclose(hooked[0], plain[0], atol=1e-5)  # the unconditional row
    rows, cols = backend.token_grid(32, 32)
    diff = backend.image_tokens(hooked - plain)[1].abs().mean(dim=-1).reshape(rows, cols)
    box = diff[rows // 2 :, cols // 2 :]
    # The box's tokens take its vector; the others move only through attention.
    assert (box > 1e-3).all()
    assert box.mean() > 2 * diff[: rows // 2, : cols // 2].mean()


def test_a_model_without_a_pooled_modulation_is_told_so() -> None:
    class NoFlux:
        transformer = torch.nn.Linear(1, 1)

    hooks = region_pooled(NoFlux(), torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(4, dtype=torch.long))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="region_pooled"), hooks:
        pass


def _two_box_plan() -> Plan:
    return two_box_plan("a red circle and a blue square")


def test_regional_takes_each_box_s_pooled_vector_from_the_step_asked(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=2)
    options = "image_attention=context:inject_fraction=1:open_image_after=0.5"

    def render(extra: str = "") -> tuple[np.ndarray, dict[str, object]]:
        result = run_strategy(f"regional:{options}{extra}", backend, _two_box_plan(), settings)
        return np.asarray(result.image, dtype=np.int16), result.report

    scene, report = render()
    assert report["pooled"] == "scene"
    # From the last step on: the switch falls after every regional step, so nothing changes.
    assert np.array_equal(render(":pooled=box:pooled_from=1")[0], scene)
    every_block, report = render(":pooled=box")
    assert report["pooled"] == "box" and np.abs(every_block - scene).max() > 0
    single, _ = render(":pooled=box_single")
    assert np.abs(single - scene).max() > 0 and np.abs(single - every_block).max() > 0
    later, _ = render(":pooled=box:pooled_from=0.5")
    assert np.abs(later - every_block).max() > 0 and np.abs(later - scene).max() > 0


def test_an_unknown_pooled_choice_is_refused_before_any_work(backend: TinyBackend) -> None:
    with pytest.raises(InvalidInputError, match="pooled"):
        run_strategy(
            "regional:pooled=boxes", backend, _two_box_plan(), SamplingSettings(32, 32, steps=2, guidance=3.0)
        )


def test_concept_maps_read_during_a_box_pooled_render_leave_it_unchanged(backend: TinyBackend) -> None:
    # ConceptAttention runs its concepts through the text stream's own layers, which the pooled
    # hooks also watch: those calls must pass untouched, and the image must stay the same.
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=2)
    options = {"image_attention": "context", "inject_fraction": 1.0, "pooled": "box"}
    alone = render_regional(backend, _two_box_plan(), settings, **options)  # type: ignore[arg-type]
    reader = ConceptAttention(concepts=concept_vectors(backend, _two_box_plan()))
    read = render_regional(backend, _two_box_plan(), settings, edits=[reader], **options)  # type: ignore[arg-type]
    assert torch.allclose(read.sample.images, alone.sample.images, atol=1e-5)
    maps = reader.maps()
    assert maps.shape[1] == 3 and torch.isfinite(maps).all()


def test_the_box_pass_takes_each_box_s_pooled_vector_and_the_free_pass_does_not(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    box = run_strategy("stitch:object_pass=box", backend, _two_box_plan(), settings)
    own = run_strategy("stitch:object_pass=box:pooled=box", backend, _two_box_plan(), settings)
    assert box.report["pooled"] == "scene" and own.report["pooled"] == "box"
    assert not torch.allclose(box.sample.images, own.sample.images)
    free = run_strategy("stitch:object_pass=free", backend, _two_box_plan(), settings)
    free_with = run_strategy("stitch:object_pass=free:pooled=box", backend, _two_box_plan(), settings)
    assert torch.equal(free.sample.images, free_with.sample.images)
