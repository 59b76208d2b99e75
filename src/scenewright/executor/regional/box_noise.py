"""Initial noise chosen box by box, so that every box commits to drawing its object.

Under regional masks a box's object is decided by the starting noise: at the first step the
model's prediction inside a small box is a faint average of where the object might be, and if
the noise there does not favour it the box stays empty for the whole render (on the 16x16-token
toy model, most of regional's failures). So before sampling, the first step is run on a few noise
draws; each box keeps the draw whose first prediction stands out most from the empty canvas
there, and the starting noise is assembled from those patches. It is a selection among ordinary
Gaussian draws, so the noise stays Gaussian; the cost is ``tries`` extra first steps.

The first step cannot see everything: a box may draw its object for a few steps and lose it once
its neighbours' tokens are let in, or draw a fragment that never becomes a shape. So a strategy
may also look again later (``box_content`` of the clean image a later step predicts) and give
the boxes that hold almost nothing a fresh draw (``redrawn_noise``), sampling again from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from scenewright.backends.base import Backend, PromptEncoding
from scenewright.executor.attention import Edit, region_token_masks
from scenewright.executor.catalogue import NOISE_SCORES
from scenewright.executor.composition import sample_with_edits
from scenewright.executor.options import require_choice
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext, make_generator
from scenewright.planner.plan import Box

Round = TypeVar("Round")

# Each extra draw's seed is the run's seed plus this stride times its number: far from the seeds
# a batch of renders uses (seed, seed + 1, ...), so the draws are not another image's noise.
DRAW_SEED_STRIDE = 7919


# A token stands out from the canvas when its distance from it is at least this share of the
# image's largest; a box holds something when at least ``weak_share`` of its tokens stand out.
STANDOUT_CONTRAST = 0.35


class CleanPrediction(SamplerHook):
    """Records the clean-image prediction the latest step implies (flow matching: x - sigma * v)."""

    needs_model_batch = False

    def __init__(self) -> None:
        self.start: torch.Tensor | None = None
        self.sigma = 1.0
        self.predicted: torch.Tensor | None = None
        self.reached = 1.0  # the noise level the latest step moved to

    def before_step(self, ctx: StepContext) -> None:
        self.start, self.sigma = ctx.latents, ctx.sigma

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> None:
        assert self.start is not None
        velocity = (latents - self.start) / (ctx.next_sigma - self.sigma)
        self.predicted = self.start - self.sigma * velocity
        self.reached = ctx.next_sigma


def canvas_distance(backend: Backend, predicted: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each token's distance from the canvas: the mean prediction on tokens outside every box (all
    tokens if none), the empty picture a box's object must stand out from."""
    tokens = backend.image_tokens(predicted)[0].float()
    canvas = ~masks.any(dim=0)
    reference = tokens[canvas].mean(dim=0) if canvas.any() else tokens.mean(dim=0)
    return (tokens - reference).norm(dim=-1)


# How ``committed_noise`` scores a box's draw: "box", the box's mean standing-out; "centre", the
# same with the box's centre counted twice (see ``box_scores``).


def box_centres(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Each (flat) box mask eroded by one token on every side, the image's edge counting as
    outside so that an edge box shrinks towards its own centre; a box too thin to keep a token
    keeps itself."""
    boxes = masks.reshape(-1, 1, *grid).float()
    outside = torch.nn.functional.pad(1.0 - boxes, (1, 1, 1, 1), value=1.0)
    inner = torch.nn.functional.max_pool2d(outside, 3, stride=1) < 0.5
    inner = inner.reshape(masks.shape[0], -1)
    empty = ~inner.any(dim=1)
    inner[empty] = masks[empty]
    return inner


def box_scores(
    backend: Backend, predicted: torch.Tensor, masks: torch.Tensor, grid: tuple[int, int] | None = None
) -> torch.Tensor:
    """How far each box's first prediction stands from the canvas: the mean over the box's tokens
    of ``canvas_distance`` or, given the token ``grid``, that mean with the box's centre
    (``box_centres``) counted twice. An object drawn against a box's edge is clipped by it and
    often lost in the finish (on the embedded model, boxes four tokens wide lost a third of
    their objects); weighting the centre alone lost objects in larger boxes (docs/benchmarks.md)."""
    distance = canvas_distance(backend, predicted, masks)
    if grid is None:
        return torch.stack([distance[m].mean() if m.any() else distance.new_zeros(()) for m in masks])
    weights = masks.float() + box_centres(masks, grid).float()
    return (weights * distance[None]).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def committed_noise(
    backend: Backend,
    encoding: PromptEncoding,
    negative: PromptEncoding | None,
    settings: SamplingSettings,
    edits: Sequence[Edit],
    boxes: Sequence[Box],
    tries: int,
    score: str = "box",
) -> torch.Tensor:
    """Starting latents assembled box by box from ``tries`` noise draws (the run's own first).

    Each box takes the draw whose first step predicts the most content in it; smaller boxes are
    placed last, so where boxes overlap the smaller one keeps its choice. Tokens outside every
    box keep the run's own noise. ``score`` is one of ``NOISE_SCORES``."""
    require_choice("noise_score", score, NOISE_SCORES)
    height, width = settings.height, settings.width
    draws = [
        backend.prepare_noise(1, height, width, make_generator(settings.seed + k * DRAW_SEED_STRIDE))
        for k in range(max(1, tries))
    ]
    if len(draws) == 1 or not boxes:
        return draws[0]
    grid = backend.token_grid(height, width)
    masks = region_token_masks(list(boxes), grid).to(draws[0].device)
    scores = []
    for draw in draws:
        first = CleanPrediction()
        sample_with_edits(
            backend, encoding, settings, edits, hooks=[first], negative=negative,
            latents=draw, max_steps=1, decode=False, progress=False,
        )  # fmt: skip
        assert first.predicted is not None
        scores.append(box_scores(backend, first.predicted, masks, grid if score == "centre" else None))
    best = torch.stack(scores).argmax(dim=0)  # (boxes,): the draw each box keeps
    tokens = backend.image_tokens(draws[0]).clone()
    draw_tokens = [backend.image_tokens(d) for d in draws]
    areas = masks.sum(dim=1)
    for box in sorted(range(len(boxes)), key=lambda i: -int(areas[i])):
        tokens[:, masks[box]] = draw_tokens[int(best[box])][:, masks[box]]
    return backend.from_image_tokens(tokens, height, width)


def box_content(backend: Backend, predicted: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each box's share of tokens that stand out from the canvas in a clean prediction (see
    ``STANDOUT_CONTRAST``): 0 for a box the prediction leaves empty, 1 for one it fills.
    Relative to the image's own contrast, so the rule reads any model's latents alike."""
    distance = canvas_distance(backend, predicted, masks)
    standout = distance >= STANDOUT_CONTRAST * distance.max().clamp_min(1e-6)
    return torch.stack(
        [standout[m].float().mean() if m.any() else standout.new_ones((), dtype=torch.float) for m in masks]
    )


def redrawn_noise(
    backend: Backend,
    latents: torch.Tensor,
    masks: torch.Tensor,
    redraw: torch.Tensor,
    settings: SamplingSettings,
    draw: int,
) -> torch.Tensor:
    """``latents`` (starting noise) with the tokens of the boxes in ``redraw`` taken from noise
    draw number ``draw``, except tokens a kept box shares: those carry the kept box's object."""
    fresh = backend.prepare_noise(
        1, settings.height, settings.width, make_generator(settings.seed + draw * DRAW_SEED_STRIDE)
    )
    swap = masks[redraw].any(dim=0) & ~masks[~redraw].any(dim=0)
    tokens = backend.image_tokens(latents).clone()
    tokens[:, swap] = backend.image_tokens(fresh.to(latents.device, latents.dtype))[:, swap]
    return backend.from_image_tokens(tokens, settings.height, settings.width)


@dataclass
class CheckedRound(Generic[Round]):
    """One round of a recheck: what the render returned, the noise it started from and each box's
    content at the check (``box_content``) and whether it was weak there (under the share)."""

    result: Round
    noise: torch.Tensor
    content: torch.Tensor
    weak: torch.Tensor


def redraw_rounds(
    backend: Backend,
    settings: SamplingSettings,
    masks: torch.Tensor,
    noise: torch.Tensor,
    render: Callable[[torch.Tensor], tuple[Round, torch.Tensor]],
    share: float,
    tries: int,
    first_draw: int,
) -> list[CheckedRound[Round]]:
    """Run ``render(noise)`` (a round: its result and the clean image it predicts at the check);
    while some box is weak there, give those boxes noise draw ``first_draw``, ``first_draw + 1``,
    ... and run again, at most ``tries`` times. Returns every round, in order."""
    rounds: list[CheckedRound[Round]] = []
    for attempt in range(tries + 1):
        result, predicted = render(noise)
        content = box_content(backend, predicted, masks)
        weak = content < share
        rounds.append(CheckedRound(result, noise, content, weak))
        if not weak.any() or attempt == tries:
            break
        noise = redrawn_noise(backend, noise, masks, weak, settings, draw=first_draw + attempt)
    return rounds


def redrawn_count(rounds: Sequence[CheckedRound[Round]]) -> int:
    """How many boxes got a fresh draw: the weak ones of every round but the last."""
    return sum(int(r.weak.sum()) for r in rounds[:-1])


def fullest_round(rounds: Sequence[CheckedRound[Round]]) -> CheckedRound[Round]:
    """The round with the fewest weak boxes (the first among equals): what a render that goes on
    from the check as one image keeps; one that can take each box from another round reads
    every round's ``content``."""
    return min(rounds, key=lambda r: int(r.weak.sum()))
