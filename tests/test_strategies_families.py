"""Every strategy runs on tiny random FLUX and SD3 pipelines: shapes and plumbing, not quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.arrays import to_numpy
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import CaptureMaps, attention_engine
from scenewright.executor.sampler import SamplingSettings, sample
from scenewright.executor.strategies import run_strategy, strategy_names
from scenewright.planner.plan import Plan, PlanObject, PlanRelation


@pytest.fixture(scope="module", params=["flux", "sd3"])
def family_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "flux":
        return FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    return SD3Backend(tiny_sd3_pipeline(), max_sequence_length=16)


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


# Regional as tuned on tiny16 (closed "context" phase with a boost, then open, guided every step).
OPENED_REGIONAL = "regional:image_attention=context:text_boost=2:open_image_after=0.5:guidance_steps=all"
# Boxes that pick their starting noise among draws, with a guidance scale of their own (tiny16's tuning).
COMMITTED_REGIONAL = "regional:noise_tries=3:region_guidance=6"
COMMITTED_BOX_PASS = "stitch:object_pass=box:noise_tries=2"


@pytest.mark.parametrize(
    "strategy",
    [
        *strategy_names(),
        "stitch:object_pass=box",
        "stitch:object_pass=auto",
        OPENED_REGIONAL,
        COMMITTED_REGIONAL,
        COMMITTED_BOX_PASS,
    ],
)
def test_every_strategy_runs_on_flux_and_sd3(family_backend: Backend, strategy: str) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    result = run_strategy(strategy, family_backend, _plan(), settings)
    pixels = np.asarray(result.image.convert("RGB"))
    assert pixels.shape == (32, 32, 3) and np.isfinite(result.sample.images.numpy()).all()
    if strategy == COMMITTED_REGIONAL:
        # SD3 guides with CFG and takes the boxes' own scale; FLUX.1 is guidance-distilled and keeps its own.
        own_scale = 6.0 if isinstance(family_backend, SD3Backend) else 3.0
        assert result.report["region_guidance"] == own_scale and result.report["noise_tries"] == 3
    if strategy.startswith("stitch"):
        # The paper's box pass by default; "auto" takes the free pass on coarse grids like this one.
        expected = "free" if "object_pass=free" in strategy or "object_pass=auto" in strategy else "box"
        assert result.report["object_pass"] == expected and result.report["objects"] == 3
        # A FLUX or SD3 model learned layout words: Stitch finishes with the global prompt.
        assert result.report["finish_prompt"] == _plan().global_prompt


@pytest.fixture(
    scope="module", params=[("flux", torch.bfloat16), ("sd3", torch.float16)], ids=["flux-bf16", "sd3.5-fp16"]
)
def half_backend(request: pytest.FixtureRequest) -> Backend:
    family, dtype = request.param
    if family == "flux":
        return FluxBackend(tiny_flux_pipeline().to(dtype), max_sequence_length=16)
    return SD3Backend(tiny_sd3_pipeline(sd35=True).to(dtype), max_sequence_length=16)


@pytest.mark.parametrize(
    "strategy",
    [
        "vanilla",
        "taca",
        "regional",
        OPENED_REGIONAL,
        COMMITTED_REGIONAL,
        "numina",
        "numina:pipeline=ours",
        "stitch",
        "stitch:object_pass=box",
        "refine",
        "auto",
    ],
)
def test_every_strategy_runs_in_half_precision(half_backend: Backend, strategy: str) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    result = run_strategy(strategy, half_backend, _plan(), settings)
    assert result.sample.images.shape[-2:] == (32, 32)
    assert np.isfinite(to_numpy(result.sample.images)).all()


def test_maps_accumulate_in_float32_on_a_half_precision_model(half_backend: Backend) -> None:
    capture = CaptureMaps(tokens=[1, 2])
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=5)
    with attention_engine(half_backend, [capture]) as engine:
        sample(half_backend, half_backend.encode_prompts(["two red apples"]), settings, hooks=[engine],
               progress=False, decode=False)  # fmt: skip
    assert capture.total is not None and capture.total.dtype == torch.float32
    maps = capture.maps()
    assert torch.isfinite(maps).all() and 0 < float(maps.max()) <= 1.0


def test_guidance_on_every_regional_step_changes_nothing_where_the_model_guides_every_step(
    family_backend: Backend,
) -> None:
    # FLUX is guidance-distilled (no unconditional pass) and SD3 guides every step already, so
    # tiny16's "guidance_steps=all" must leave their images exactly as the paper's regional draws them.
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=5)
    own = run_strategy("regional:guidance_steps=model", family_backend, _plan(), settings)
    every = run_strategy("regional:guidance_steps=all", family_backend, _plan(), settings)
    assert torch.equal(own.sample.images, every.sample.images)


@pytest.mark.parametrize("pooled", ["box", "box_single"])
def test_boxes_take_their_own_pooled_vector_on_flux_and_sd3_is_told_it_cannot(
    family_backend: Backend, pooled: str
) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    strategy = f"regional:pooled={pooled}:pooled_from=0.25"
    if isinstance(family_backend, SD3Backend):
        # SD3's joint blocks take their modulation another way: a one-line error, not a silent no-op.
        with pytest.raises(InvalidInputError, match="pooled"):
            run_strategy(strategy, family_backend, _plan(), settings)
        return
    scene = run_strategy("regional", family_backend, _plan(), settings)
    boxes = run_strategy(strategy, family_backend, _plan(), settings)
    assert boxes.report["pooled"] == pooled and np.isfinite(to_numpy(boxes.sample.images)).all()
    assert not torch.equal(boxes.sample.images, scene.sample.images)


def test_boxes_take_their_own_pooled_vector_in_half_precision(half_backend: Backend) -> None:
    if isinstance(half_backend, SD3Backend):
        pytest.skip("SD3 refuses pooled=box (the test above)")
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    scene = run_strategy("regional:noise_tries=2", half_backend, _plan(), settings)
    boxes = run_strategy("regional:pooled=box:noise_tries=2", half_backend, _plan(), settings)
    assert np.isfinite(to_numpy(boxes.sample.images)).all()
    assert not torch.equal(boxes.sample.images, scene.sample.images)


@pytest.mark.parametrize(
    "strategy",
    ["regional:noise_tries=2:recheck_at=0.5"],
)
def test_empty_boxes_are_drawn_again_on_flux_and_sd3_latents(
    family_backend: Backend, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recheck's redraw swaps box tokens of packed FLUX and patchless SD3 latents alike."""
    from scenewright.executor.regional import box_noise

    def every_box_empty(backend: Backend, predicted: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        assert (
            predicted.shape == family_backend.prepare_noise(1, 64, 64, torch.Generator().manual_seed(0)).shape
        )
        return torch.zeros(masks.shape[0])

    monkeypatch.setattr(box_noise, "box_content", every_box_empty)
    settings = SamplingSettings(64, 64, steps=4, guidance=3.0, seed=5)
    result = run_strategy(strategy, family_backend, _plan(), settings)
    plain = run_strategy(
        strategy.replace("recheck_at=0.5", "recheck_at=0"),
        family_backend,
        _plan(),
        settings,
    )
    expected_redraws = 3 * 2
    assert (
        result.report["boxes_redrawn"] == expected_redraws and np.isfinite(result.sample.images.numpy()).all()
    )
    # Every round as empty as the first: the first round is kept, and the image is the plain one.
    assert torch.equal(result.sample.images, plain.sample.images)


def _overlapping_plan() -> Plan:
    """Three apples whose boxes overlap in a row: the middle one shares tokens with both others."""
    boxes = [(0.0, 0.0, 0.5, 0.5), (0.25, 0.0, 0.75, 0.5), (0.5, 0.0, 1.0, 0.5)]
    return Plan(
        prompt="three red apples",
        objects=[PlanObject(name="apple", count=3, attributes=["red"], boxes=boxes)],
    )


def test_overlapping_boxes_and_their_seam_on_flux_and_sd3_latents(family_backend: Backend) -> None:
    """The box pass's groups and seam on packed FLUX and patchless SD3 latents alike."""
    settings = SamplingSettings(64, 64, steps=4, guidance=3.0, seed=5)
    plain = run_strategy("stitch:object_pass=box", family_backend, _overlapping_plan(), settings)
    seamed = run_strategy(
        "stitch:object_pass=box:seam_fraction=0.5", family_backend, _overlapping_plan(), settings
    )
    assert plain.report["object_groups"] == seamed.report["object_groups"] == 2
    assert np.isfinite(to_numpy(seamed.sample.images)).all()
    assert not torch.allclose(plain.sample.images, seamed.sample.images)


def test_overlapping_boxes_and_their_seam_in_half_precision(half_backend: Backend) -> None:
    settings = SamplingSettings(64, 64, steps=4, guidance=3.0, seed=5)
    result = run_strategy(
        "stitch:object_pass=box:seam_fraction=0.5", half_backend, _overlapping_plan(), settings
    )
    assert result.report["object_groups"] == 2 and result.sample.images.shape[-2:] == (64, 64)
    assert np.isfinite(to_numpy(result.sample.images)).all()
