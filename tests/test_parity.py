"""Our sampler reproduces diffusers' own pipelines for the same seed and settings."""

from __future__ import annotations

import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.executor.sampler import SamplingSettings, make_generator, sample

PROMPT = "three red apples left of a blue vase"


@pytest.mark.parametrize("guidance_embeds", [True, False], ids=["dev-like", "schnell-like"])
def test_flux_sampler_matches_flux_pipeline(guidance_embeds: bool) -> None:
    pipe = tiny_flux_pipeline(guidance_embeds=guidance_embeds)
    settings = SamplingSettings(height=32, width=48, steps=4, guidance=3.5, seed=7)
    expected = pipe(
        PROMPT,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        generator=make_generator(settings.seed),
        output_type="pt",
        max_sequence_length=16,
    ).images
    backend = FluxBackend(pipe, max_sequence_length=16)
    ours = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    assert ours.shape == expected.shape == (1, 3, 32, 48)
    assert (ours - expected).abs().max().item() < 1e-4
    # The image is not trivially constant: a different seed gives a different image.
    other = sample(backend, backend.encode_prompts([PROMPT]), SamplingSettings(32, 48, 4, 3.5, seed=8))
    assert (other.images - expected).abs().max().item() > 1e-3


@pytest.mark.parametrize("sd35", [False, True], ids=["sd3", "sd3.5-style"])
def test_sd3_sampler_matches_sd3_pipeline(sd35: bool) -> None:
    pipe = tiny_sd3_pipeline(sd35=sd35)
    settings = SamplingSettings(height=32, width=64, steps=4, guidance=5.0, seed=3)
    expected = pipe(
        PROMPT,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        generator=make_generator(settings.seed),
        output_type="pt",
        max_sequence_length=16,
    ).images
    backend = SD3Backend(pipe, max_sequence_length=16)
    ours = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    assert ours.shape == expected.shape == (1, 3, 32, 64)
    assert (ours - expected).abs().max().item() < 1e-4
    # Guidance changes the image: CFG is really applied.
    weaker = sample(backend, backend.encode_prompts([PROMPT]), SamplingSettings(32, 64, 4, 1.0, seed=3))
    assert (weaker.images - expected).abs().max().item() > 1e-4


def test_sd3_word_tokens_cover_clip_and_t5_positions() -> None:
    backend = SD3Backend(tiny_sd3_pipeline(), max_sequence_length=16)
    enc = backend.encode_prompts([PROMPT])
    # "apples" is word 3 in both CLIP (offset 0, after <bos>) and T5 (offset 77, after <bos>).
    assert enc.tokens_for(0, "apples") == [3, 77 + 3]
    assert enc.embeds.shape[1] == 77 + 16


def test_flux_word_tokens_and_roundtrip_of_latent_layout() -> None:
    backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    enc = backend.encode_prompts([PROMPT, "a cat"])
    assert enc.tokens_for(0, "blue vase") == [7, 8]  # after <bos> and 6 words
    assert enc.tokens_for(1, "cat") == [2]
    noise = backend.prepare_noise(2, 32, 48, make_generator(0))
    assert noise.shape == (2, 8 * 12, 16)
    assert backend.token_grid(32, 48) == (8, 12)
    assert torch.equal(backend.from_image_tokens(backend.image_tokens(noise), 32, 48), noise)
    spatial = backend.spatial_latents(noise, 32, 48)
    assert spatial.shape == (2, 4, 16, 24)  # the VAE's map (32/2, 48/2 here), before 2x2 packing
    assert torch.equal(backend.from_spatial_latents(spatial, 32, 48), noise)


def test_sd3_image_tokens_roundtrip() -> None:
    backend = SD3Backend(tiny_sd3_pipeline(), max_sequence_length=16)
    noise = backend.prepare_noise(1, 32, 64, make_generator(0))
    tokens = backend.image_tokens(noise)
    assert tokens.shape == (1, 8 * 16, 16)  # VAE halves, patch 2 halves again
    assert torch.equal(backend.from_image_tokens(tokens, 32, 64), noise)
    assert torch.equal(backend.from_spatial_latents(backend.spatial_latents(noise, 32, 64), 32, 64), noise)
