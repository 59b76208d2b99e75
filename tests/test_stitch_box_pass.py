"""The Stitch box pass with overlapping boxes: one object pass per group of disjoint boxes, and the
seam two boxes share held on the background's path."""

from __future__ import annotations

import pytest
import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.composition import plan_regions
from scenewright.executor.regional import box_noise
from scenewright.executor.sampler import SamplingSettings, StepContext
from scenewright.executor.stitch import render_stitch
from scenewright.executor.stitch.box_pass import disjoint_groups, group_plan
from scenewright.executor.stitch.hold import BackgroundHold, canvas_tokens, seam_tokens
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan, PlanObject

APART = [(0.0, 0.0, 0.4, 0.4), (0.6, 0.6, 1.0, 1.0)]
OVERLAPPING = [(0.0, 0.0, 0.5, 0.5), (0.25, 0.0, 0.75, 0.5), (0.5, 0.0, 1.0, 0.5)]


@pytest.fixture(scope="module")
def backend() -> TinyBackend:
    return TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1), seed=3)


def _plan(boxes: list[tuple[float, float, float, float]]) -> Plan:
    return Plan(
        prompt=f"{len(boxes)} red circles and a blue star",
        objects=[
            PlanObject(name="circle", attributes=["red"], count=len(boxes) - 1, boxes=boxes[:-1]),
            PlanObject(name="star", attributes=["blue"], boxes=boxes[-1:]),
        ],
    )


def test_boxes_that_share_a_token_go_to_different_groups() -> None:
    assert disjoint_groups(APART, (8, 8)) == [[0, 1]]
    # The middle box overlaps both others; the outer two are disjoint and share a pass.
    assert disjoint_groups(OVERLAPPING, (8, 8)) == [[0, 2], [1]]
    # Boxes that only touch at an edge share no token.
    assert disjoint_groups([(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)], (8, 8)) == [[0, 1]]


def test_a_group_plan_keeps_each_object_with_its_boxes_in_the_group() -> None:
    plan = _plan(OVERLAPPING)
    regions = plan_regions(plan)
    first = group_plan(plan, regions, [0, 2])
    assert [(o.name, o.count, o.boxes) for o in first.objects] == [
        ("circle", 1, [OVERLAPPING[0]]),
        ("star", 1, [OVERLAPPING[2]]),
    ]
    second = group_plan(plan, regions, [1])
    assert [(o.name, o.count, o.boxes) for o in second.objects] == [("circle", 1, [OVERLAPPING[1]])]
    assert second.relations == [] and second.global_prompt == plan.global_prompt


def _grid(mask: torch.Tensor) -> list[list[int]]:
    return mask.reshape(4, 4).int().tolist()


def test_the_seam_holds_shared_tokens_and_the_border_of_touching_boxes_of_one_object() -> None:
    # On a 4x4 grid: two circles side by side touching at an edge, a third overlapping the second
    # by one column, and a star touching the first circle from below.
    plan = Plan(
        prompt="three red circles and a blue star",
        objects=[
            PlanObject(
                name="circle",
                attributes=["red"],
                count=3,
                boxes=[(0.0, 0.0, 0.25, 0.5), (0.25, 0.0, 0.5, 0.5), (0.25, 0.0, 0.75, 0.5)],
            ),
            PlanObject(name="star", attributes=["blue"], boxes=[(0.0, 0.5, 0.25, 1.0)]),
        ],
    )
    regions = plan_regions(plan)
    shared = [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # The first two circles only touch: the later one's column along the border joins the seam
    # (here it is the shared column too); the star is another object and gets no seam.
    assert _grid(seam_tokens(regions, (4, 4))) == shared
    apart = plan.model_copy(
        update={
            "objects": [
                plan.objects[0].model_copy(
                    update={"count": 2, "boxes": [(0.0, 0.0, 0.25, 0.5), (0.25, 0.0, 0.75, 0.5)]}
                ),
                plan.objects[1],
            ]
        }
    )
    touching = seam_tokens(plan_regions(apart), (4, 4))
    assert _grid(touching) == [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # Boxes that meet only at a corner share no edge: no seam.
    corner = apart.model_copy(
        update={
            "objects": [
                apart.objects[0].model_copy(
                    update={"boxes": [(0.0, 0.0, 0.25, 0.25), (0.25, 0.25, 0.5, 0.5)]}
                )
            ]
        }
    )
    assert not seam_tokens(plan_regions(corner), (4, 4)).any()


def test_the_seam_follows_the_background_until_its_last_step(backend: TinyBackend) -> None:
    height = width = 32
    rows, cols = backend.token_grid(height, width)
    tokens = torch.randn(1, rows * cols, backend.config.channels)
    seam = torch.tensor([3, 7])
    clean = torch.randn_like(tokens)
    hold = BackgroundHold(backend, seam, tokens, clean, sigma=0.8, until_step=4)
    noise = (tokens - 0.2 * clean) / 0.8
    latents = backend.from_image_tokens(torch.randn_like(tokens), height, width)
    ctx = StepContext(
        step=3, num_steps=10, timestep=torch.tensor(0.5), sigma=0.6, latents=latents,
        height=height, width=width, next_sigma=0.5,
    )  # fmt: skip
    held = backend.image_tokens(hold.after_step(ctx, latents))
    before = backend.image_tokens(latents)
    assert torch.allclose(held[:, seam], 0.5 * clean[:, seam] + 0.5 * noise[:, seam], atol=1e-5)
    others = torch.ones(rows * cols, dtype=torch.bool)
    others[seam] = False
    assert torch.equal(held[:, others], before[:, others])
    ctx.step = 4
    assert hold.after_step(ctx, latents) is None


def test_overlapping_boxes_get_their_own_object_passes(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    apart = run_strategy("stitch:object_pass=box", backend, _plan(APART), settings)
    assert apart.report["object_groups"] == 1
    # No box shares a token, so there is no seam: the option changes nothing.
    seamless = run_strategy("stitch:object_pass=box:seam_fraction=0.6", backend, _plan(APART), settings)
    assert torch.equal(apart.sample.images, seamless.sample.images)
    overlapping = run_strategy("stitch:object_pass=box", backend, _plan(OVERLAPPING), settings)
    assert overlapping.report["object_groups"] == 2
    seamed = run_strategy("stitch:object_pass=box:seam_fraction=0.6", backend, _plan(OVERLAPPING), settings)
    assert not torch.allclose(overlapping.sample.images, seamed.sample.images)


def test_seam_fraction_out_of_range_names_the_option(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    with pytest.raises(InvalidInputError, match="seam_fraction"):
        run_strategy("stitch:object_pass=box:seam_fraction=1.5", backend, _plan(APART), settings)


def test_touching_boxes_of_one_object_get_a_seam(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    # Two circles whose boxes meet at an edge (one object pass, no shared token) and a star apart.
    plan = _plan([(0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.25, 0.75, 0.75, 1.0)])
    unseamed = run_strategy("stitch:object_pass=box", backend, plan, settings)
    assert unseamed.report["object_groups"] == 1
    touching = run_strategy("stitch:object_pass=box:seam_fraction=0.6", backend, plan, settings)
    assert not torch.allclose(unseamed.sample.images, touching.sample.images)
    with pytest.raises(InvalidInputError, match="seam_between of 'stitch' was removed"):
        run_strategy("stitch:object_pass=box:seam_between=overlap", backend, plan, settings)


def test_the_seam_is_held_through_the_hold_steps_too(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hold steps come right after the switch; a seam released there and imposed again after
    # them would jolt the image.
    seen: list[int] = []
    original = BackgroundHold.after_step

    def watched(self: BackgroundHold, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        seen.append(ctx.step)
        return original(self, ctx, latents)

    monkeypatch.setattr(BackgroundHold, "after_step", watched)
    settings = SamplingSettings(32, 32, steps=10, guidance=3.0, seed=1)
    result = run_strategy(
        "stitch:object_pass=box:seam_fraction=0.5:hold_fraction=0.2", backend, _plan(OVERLAPPING), settings
    )
    switch, hold = result.report["switch_step"], result.report["hold_steps"]
    assert hold == 2
    assert seen == list(range(switch, settings.steps))


def test_an_unknown_noise_score_is_a_named_error(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    with pytest.raises(InvalidInputError, match="noise_score"):
        run_strategy("stitch:object_pass=box:noise_score=middle", backend, _plan(APART), settings)
    with pytest.raises(InvalidInputError, match="noise_score"):
        render_stitch(backend, _plan(APART), settings, object_pass="box", noise_score="middle")


def test_the_canvas_and_the_seam_are_held_each_for_its_own_share_of_the_steps(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[tuple[torch.Tensor, int]] = []
    original = BackgroundHold.__init__

    def recording(self: BackgroundHold, backend: TinyBackend, seam: torch.Tensor, *rest: object) -> None:
        original(self, backend, seam, *rest)  # type: ignore[arg-type]
        held.append((seam.cpu(), self.until_step))

    monkeypatch.setattr(BackgroundHold, "__init__", recording)
    settings = SamplingSettings(32, 32, steps=10, guidance=3.0, seed=1)
    plan = _plan(OVERLAPPING)
    result = run_strategy(
        "stitch:object_pass=box:seam_fraction=0.2:canvas_fraction=0.6", backend, plan, settings
    )
    switch = result.report["switch_step"]
    regions = plan_regions(plan)
    grid = backend.token_grid(32, 32)
    (seam, seam_until), (canvas, canvas_until) = held
    assert (seam_until, canvas_until) == (switch + 2, switch + 6)
    assert torch.equal(seam, seam_tokens(regions, grid).nonzero().flatten())
    assert torch.equal(canvas, canvas_tokens(regions, grid).nonzero().flatten())
    assert canvas.numel() > 0
    unheld = run_strategy("stitch:object_pass=box:seam_fraction=0.2", backend, plan, settings)
    assert not torch.allclose(unheld.sample.images, result.sample.images)


def test_an_empty_box_borrows_its_siblings_draft_and_the_report_counts_it(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=1)
    # Two circles and a star, all apart: one object pass; the second circle and the star are
    # scripted empty at the switch. Only the circle has a sibling to borrow from.
    plan = _plan([(0.0, 0.0, 0.4, 0.4), (0.6, 0.0, 1.0, 0.4), (0.3, 0.6, 0.7, 1.0)])

    def content(backend: TinyBackend, predicted: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.9, 0.0, 0.0])

    monkeypatch.setattr(box_noise, "box_content", content)
    plain = run_strategy("stitch:object_pass=box", backend, plan, settings)
    borrowed = run_strategy("stitch:object_pass=box:borrow_share=0.35", backend, plan, settings)
    assert "boxes_borrowed" not in plain.report
    assert borrowed.report["boxes_borrowed"] == 1
    assert not torch.allclose(plain.sample.images, borrowed.sample.images)
    with pytest.raises(InvalidInputError, match="borrow_share"):
        run_strategy("stitch:object_pass=box:borrow_share=1.5", backend, plan, settings)
    with pytest.raises(InvalidInputError, match="canvas_fraction"):
        run_strategy("stitch:object_pass=box:canvas_fraction=-0.1", backend, plan, settings)
