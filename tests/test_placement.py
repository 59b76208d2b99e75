"""Sub-token placement for Stitch's free pass: split, cut out, shrink to fit, paste."""

from __future__ import annotations

import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.executor.sampler import StepContext
from scenewright.executor.stitch.placement import (
    LastStepSplit,
    PlacedObject,
    coverage,
    fit_into_box,
    object_alpha,
    paste,
    upsample_gate,
)


def test_last_step_split_recovers_clean_image_and_noise_exactly() -> None:
    clean, noise = torch.randn(1, 16, 12), torch.randn(1, 16, 12)
    sigma, next_sigma = 0.7, 0.55
    before = (1 - sigma) * clean + sigma * noise
    after = before + (next_sigma - sigma) * (noise - clean)  # one exact Euler step of the flow
    hook = LastStepSplit()
    ctx = StepContext(step=3, num_steps=8, timestep=torch.tensor(700.0), sigma=sigma, latents=before,
                      height=32, width=32, next_sigma=next_sigma)  # fmt: skip
    hook.after_step(ctx, after)
    split = hook.split()
    assert split.sigma == next_sigma
    assert torch.allclose(split.clean, clean, atol=1e-5) and torch.allclose(split.noise, noise, atol=1e-5)


def _square(size: int, top: int, left: int, side: int, value: float = 1.0) -> torch.Tensor:
    image = torch.full((3, size, size), -1.0)
    image[:, top : top + side, left : left + side] = value
    return image


def test_object_alpha_is_the_object_where_it_departs_from_the_background() -> None:
    background = torch.full((3, 64, 64), -1.0)
    obj = _square(64, 10, 20, 12)
    alpha = object_alpha(obj, background, torch.ones(64, 64))
    assert alpha[10:22, 20:32].min() == 1.0 and alpha.sum() == 144
    gate = upsample_gate(torch.zeros(8, 8, dtype=torch.bool), (64, 64))
    assert object_alpha(obj, background, gate).sum() == 0  # nothing kept: no object


def test_fit_shrinks_an_object_into_its_box_and_centres_it() -> None:
    obj = _square(64, 4, 4, 20)  # 20 px, far from its box
    alpha = object_alpha(obj, torch.full((3, 64, 64), -1.0), torch.ones(64, 64))
    box = (0.5, 0.5, 0.75, 0.75)  # 16 px wide, centred at (40, 40)
    placed = fit_into_box(obj, alpha, box, fill=0.8)
    assert placed is not None and abs(placed.scale - 0.8 * 16 / 20) < 1e-6
    covered = coverage(placed, (64, 64))
    body = (covered > 0.5).nonzero().float()
    assert body.numel() > 0
    centre = body.mean(dim=0) + 0.5
    assert torch.allclose(centre, torch.tensor([40.0, 40.0]), atol=1.0)
    extent = body.max(dim=0).values - body.min(dim=0).values + 1
    assert bool((extent <= 0.8 * 16 + 1).all()) and bool((extent >= 0.8 * 16 - 2).all())
    # The colour survives the shrink (premultiplied resize: no darkening from the black around it).
    pasted = paste(torch.full((3, 64, 64), -1.0), placed)
    assert torch.allclose(pasted[:, 40, 40], torch.ones(3), atol=1e-4)
    # A small object is moved, never enlarged.
    small = fit_into_box(
        _square(64, 0, 0, 6),
        object_alpha(_square(64, 0, 0, 6), torch.full((3, 64, 64), -1.0), torch.ones(64, 64)),
        box,
    )
    assert small is not None and small.scale == 1.0
    assert fit_into_box(obj, torch.zeros(64, 64), box) is None


def test_paste_leaves_every_value_outside_the_object_untouched() -> None:
    canvas = torch.randn(3, 32, 32)
    patch = PlacedObject(
        torch.zeros(3, 6, 6), torch.ones(6, 6), top=28, left=-2, scale=1.0
    )  # clipped at two edges
    out = paste(canvas, patch)
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[28:32, 0:4] = True
    assert torch.equal(out[:, ~inside], canvas[:, ~inside])
    assert torch.equal(out[:, inside], torch.zeros(3, 16))


def test_tiny_backend_spatial_view_is_the_image() -> None:
    backend = TinyBackend.random(TinyConfig(image_size=32, patch=4, double_blocks=1, single_blocks=1))
    images = torch.rand(2, 3, 32, 32)
    latents = backend.encode_image(images, 32, 32)
    spatial = backend.spatial_latents(latents, 32, 32)
    assert torch.allclose(spatial, images * 2 - 1, atol=1e-6)
    assert torch.equal(backend.from_spatial_latents(spatial, 32, 32), latents)
    assert torch.allclose(backend.decode(latents, 32, 32), images, atol=1e-6)


def test_strongest_component_keeps_one_of_two_drawn_copies() -> None:
    from scenewright.executor.stitch.placement import strongest_component

    alpha = torch.zeros(16, 16)
    alpha[1:4, 1:4] = 0.6  # a faint copy
    alpha[8:14, 8:14] = 1.0  # the main one
    kept = strongest_component(alpha)
    assert kept[1:4, 1:4].sum() == 0 and torch.equal(kept[8:14, 8:14], alpha[8:14, 8:14])
    single = torch.zeros(8, 8)
    single[2:5, 2:5] = 1.0
    assert torch.equal(strongest_component(single), single)
