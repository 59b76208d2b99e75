"""Regional's box-by-box starting noise and its own guidance scale for the box steps."""

from __future__ import annotations

import pytest
import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import region_token_masks
from scenewright.executor.composition import sample_with_edits
from scenewright.executor.regional import box_noise, regional_edit, render_regional
from scenewright.executor.regional.box_noise import (
    DRAW_SEED_STRIDE,
    CleanPrediction,
    box_centres,
    box_content,
    box_scores,
    committed_noise,
    redrawn_noise,
)
from scenewright.executor.sampler import SamplingSettings, make_generator
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan, PlanObject

BOXES = [(0.0, 0.0, 0.5, 0.5), (0.5, 0.5, 1.0, 1.0), (0.5, 0.5, 0.75, 0.75)]


@pytest.fixture(scope="module")
def backend() -> TinyBackend:
    return TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1), seed=3)


def plan() -> Plan:
    return Plan(
        prompt="a red circle, a blue square and a green star",
        objects=[
            PlanObject(name="circle", attributes=["red"], boxes=[BOXES[0]]),
            PlanObject(name="square", attributes=["blue"], boxes=[BOXES[1]]),
            PlanObject(name="star", attributes=["green"], boxes=[BOXES[2]]),
        ],
    )


def test_a_box_scores_by_its_distance_from_the_empty_canvas(backend: TinyBackend) -> None:
    grid = backend.token_grid(32, 32)  # 8x8 tokens: box 0 is 16 tokens, box 2 four
    masks = region_token_masks(BOXES, grid)
    tokens = torch.full((1, grid[0] * grid[1], backend.config.channels), 0.5)
    tokens[0, masks[0]] += 2.0
    tokens[0, masks[2]] -= 1.0  # box 2 lies inside box 1: box 1 averages its 4 moved tokens of 16
    scores = box_scores(backend, backend.from_image_tokens(tokens, 32, 32), masks)
    width = backend.config.channels**0.5
    assert torch.allclose(scores, torch.tensor([2.0 * width, 0.25 * width, 1.0 * width]))


def test_each_box_keeps_the_draw_whose_first_step_shows_it_most(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=2)
    encoding, negative, mask = regional_edit(backend, plan(), settings)
    own = backend.prepare_noise(1, 32, 32, make_generator(2))
    assert torch.equal(committed_noise(backend, encoding, negative, settings, [mask], BOXES, 1), own)
    chosen = backend.image_tokens(committed_noise(backend, encoding, negative, settings, [mask], BOXES, 3))[0]
    masks = region_token_masks(BOXES, backend.token_grid(32, 32))
    draws, scores = [], []
    for k in range(3):
        draw = backend.prepare_noise(1, 32, 32, make_generator(2 + k * DRAW_SEED_STRIDE))
        first = CleanPrediction()
        sample_with_edits(backend, encoding, settings, [mask], hooks=[first], negative=negative,
                          latents=draw, max_steps=1, decode=False, progress=False)  # fmt: skip
        assert first.predicted is not None
        draws.append(backend.image_tokens(draw)[0])
        scores.append(box_scores(backend, first.predicted, masks))
    best = torch.stack(scores).argmax(dim=0)
    canvas = ~masks.any(dim=0)
    assert torch.equal(chosen[canvas], draws[0][canvas])  # the canvas keeps the run's own noise
    assert torch.equal(chosen[masks[0]], draws[int(best[0])][masks[0]])
    assert torch.equal(chosen[masks[2]], draws[int(best[2])][masks[2]])  # the smaller box wins overlaps
    outer = masks[1] & ~masks[2]
    assert torch.equal(chosen[outer], draws[int(best[1])][outer])
    assert len(set(best.tolist())) > 1 or not torch.equal(chosen, draws[0])  # a real choice was made


def test_noise_tries_and_region_guidance_change_the_render_and_are_reported(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=1)
    plain = render_regional(backend, plan(), settings)
    assert torch.equal(
        render_regional(backend, plan(), settings, noise_tries=1).sample.images, plain.sample.images
    )
    tried = render_regional(backend, plan(), settings, noise_tries=3)
    assert tried.report["noise_tries"] == 3 and not torch.allclose(tried.sample.images, plain.sample.images)
    strong = render_regional(backend, plan(), settings, region_guidance=9.0)
    assert strong.report["region_guidance"] == 9.0 and plain.report["region_guidance"] == 3.0
    assert not torch.allclose(strong.sample.images, plain.sample.images)
    # A run without guidance stays unguided: the option scales guidance, it does not switch it on.
    unguided = SamplingSettings(32, 32, steps=3, guidance=1.0, seed=1)
    a = render_regional(backend, plan(), unguided)
    b = render_regional(backend, plan(), unguided, region_guidance=9.0)
    assert torch.equal(a.sample.images, b.sample.images) and b.report["region_guidance"] == 1.0
    for bad in ("noise_tries=0", "noise_tries=40", "region_guidance=-1"):
        with pytest.raises(InvalidInputError, match=bad.split("=")[0]):
            run_strategy(f"regional:{bad}", backend, plan(), settings)


def test_the_box_pass_takes_noise_tries_and_the_free_pass_does_not(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)  # a seed where another draw wins
    box = run_strategy("stitch:object_pass=box", backend, plan(), settings).sample.images
    changed = run_strategy("stitch:object_pass=box:noise_tries=3", backend, plan(), settings).sample.images
    assert not torch.allclose(box, changed)
    free = run_strategy("stitch:object_pass=free", backend, plan(), settings).sample.images
    free_with = run_strategy("stitch:object_pass=free:noise_tries=3", backend, plan(), settings)
    assert torch.equal(free, free_with.sample.images)


def test_a_box_is_weak_when_almost_none_of_its_tokens_stand_out(backend: TinyBackend) -> None:
    grid = backend.token_grid(64, 64)  # 8x8 tokens: box 1 is 16, box 2 four
    masks = region_token_masks(BOXES, grid)
    tokens = torch.zeros((1, grid[0] * grid[1], backend.config.channels))
    tokens[0, masks[0]] = 1.0  # box 0 full
    first_token_of_box_1 = int(torch.nonzero(masks[1] & ~masks[2])[0])
    tokens[0, first_token_of_box_1] = 0.9  # one token of box 1's 16 stands out (6%)
    tokens[0, masks[2]] = 0.2  # box 2: faint, under STANDOUT_CONTRAST of the strongest
    predicted = backend.from_image_tokens(tokens, 64, 64)
    assert (box_content(backend, predicted, masks) < 0.1).tolist() == [False, True, True]
    assert (box_content(backend, predicted, masks) < 0.05).tolist() == [False, False, True]
    tokens[0, masks[2]] = 0.5
    predicted = backend.from_image_tokens(tokens, 64, 64)
    assert (box_content(backend, predicted, masks) < 0.1).tolist() == [False, False, False]


def test_a_redrawn_box_takes_the_new_draw_except_where_a_kept_box_overlaps(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=1.0, seed=5)
    masks = region_token_masks(BOXES, backend.token_grid(32, 32))
    noise = backend.prepare_noise(1, 32, 32, make_generator(5))
    redrawn = redrawn_noise(backend, noise, masks, torch.tensor([False, True, False]), settings, draw=4)
    fresh = backend.image_tokens(backend.prepare_noise(1, 32, 32, make_generator(5 + 4 * DRAW_SEED_STRIDE)))[
        0
    ]
    old, new = backend.image_tokens(noise)[0], backend.image_tokens(redrawn)[0]
    swapped = masks[1] & ~masks[2]
    assert torch.equal(new[swapped], fresh[swapped])
    assert torch.equal(new[~swapped], old[~swapped])  # box 2 lies in box 1 and is kept


def test_recheck_redraws_weak_boxes_and_keeps_the_round_with_fewest(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=1)
    plain = render_regional(backend, plan(), settings)
    # Nothing is weak at share 0: the render, split at the check, is the plain one to the bit.
    never = render_regional(backend, plan(), settings, recheck_at=0.5, recheck_share=0.0)
    assert torch.equal(never.sample.images, plain.sample.images) and never.report["boxes_redrawn"] == 0
    rounds: list[torch.Tensor] = []

    def scripted(script: list[list[bool]]) -> object:
        def content(backend: TinyBackend, predicted: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
            rounds.append(predicted)
            return 1.0 - torch.tensor(script[min(len(rounds), len(script)) - 1]).float()

        return content

    # Every box weak in every round: two redraws of three boxes, and the first round is kept.
    monkeypatch.setattr(box_noise, "box_content", scripted([[True, True, True]]))
    always = render_regional(backend, plan(), settings, recheck_at=0.5, recheck_tries=2)
    assert len(rounds) == 3 and always.report["boxes_redrawn"] == 6
    assert torch.equal(always.sample.images, plain.sample.images)
    assert not torch.equal(rounds[0], rounds[1])  # the redrawn rounds did sample other noise
    # Box 1 weak in the first round only: the redrawn round is kept, and the image changes.
    rounds.clear()
    monkeypatch.setattr(box_noise, "box_content", scripted([[False, True, False], [False, False, False]]))
    once = render_regional(backend, plan(), settings, recheck_at=0.5, recheck_tries=3)
    assert len(rounds) == 2 and once.report["boxes_redrawn"] == 1
    assert not torch.allclose(once.sample.images, plain.sample.images)
    for bad in ("recheck_at=1.5", "recheck_tries=-1", "recheck_share=2"):
        with pytest.raises(InvalidInputError, match=bad.split("=")[0]):
            run_strategy(f"regional:{bad}", backend, plan(), settings)


def test_a_box_centre_is_the_box_eroded_by_a_token_the_image_edge_counting_as_outside() -> None:
    grid = (8, 8)
    masks = region_token_masks(
        [(0.0, 0.0, 0.5, 0.375), (0.25, 0.25, 0.75, 0.75), (0.0, 0.5, 0.25, 0.75)], grid
    ).flatten(1)
    centres = box_centres(masks, grid).reshape(3, *grid)
    # A 4x3 box at the image's corner keeps its middle: row 1, columns 1 and 2.
    assert centres[0].nonzero().tolist() == [[1, 1], [1, 2]]
    assert centres[1].nonzero().tolist() == [[3, 3], [3, 4], [4, 3], [4, 4]]
    # A 2x2 box has no inside: it keeps itself.
    assert torch.equal(centres[2], masks[2].reshape(grid))


def test_the_centre_score_prefers_an_object_in_the_middle_of_its_box(backend: TinyBackend) -> None:
    grid = backend.token_grid(64, 64)
    masks = region_token_masks([(0.125, 0.125, 0.875, 0.875)], grid).flatten(1)
    centre = box_centres(masks, grid)[0]
    ring = masks[0] & ~centre
    channels = backend.config.channels

    def drawn(where: torch.Tensor) -> torch.Tensor:
        tokens = torch.zeros(1, grid[0] * grid[1], channels)
        tokens[:, where] = 1.0
        return backend.from_image_tokens(tokens, 64, 64)

    at_edge, in_middle = drawn(ring), drawn(centre)
    # By the whole box the object on its edge stands out more (it covers more tokens) ...
    assert box_scores(backend, at_edge, masks) > box_scores(backend, in_middle, masks)
    # ... by the centre the object in the middle wins.
    assert box_scores(backend, in_middle, masks, grid) > box_scores(backend, at_edge, masks, grid)
