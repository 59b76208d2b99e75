"""Z-Image: our sampler reproduces ZImagePipeline, and the layout helpers agree with the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scenewright.backends.base import GuidanceMode
from scenewright.backends.z_image import ZImageBackend
from scenewright.executor.sampler import SamplingSettings, make_generator, sample
from z_image_builders import tiny_z_image_pipeline

PROMPT = "three red apples left of a blue vase"


@pytest.fixture(scope="module")
def backend() -> ZImageBackend:
    return ZImageBackend(tiny_z_image_pipeline(), max_sequence_length=64)


def _pipeline_images(
    backend: ZImageBackend, settings: SamplingSettings, prompt: str = PROMPT
) -> torch.Tensor:
    images: torch.Tensor = backend.pipe(
        prompt,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=0.0,
        generator=make_generator(settings.seed),
        output_type="pt",
        max_sequence_length=64,
    ).images
    return images


@pytest.mark.parametrize("size", [(32, 48), (24, 32)], ids=["no-image-pad", "image-pad"])
def test_z_image_sampler_matches_z_image_pipeline(backend: ZImageBackend, size: tuple[int, int]) -> None:
    settings = SamplingSettings(height=size[0], width=size[1], steps=3, guidance=0.0, seed=7)
    expected = _pipeline_images(backend, settings)
    ours = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    assert ours.shape == expected.shape == (1, 3, *size)
    assert (ours - expected).abs().max().item() < 1e-4
    other = sample(backend, backend.encode_prompts([PROMPT]), SamplingSettings(*size, 3, 0.0, seed=8))
    assert (other.images - expected).abs().max().item() > 1e-3


def test_caption_padding_is_the_models_pad_token(backend: ZImageBackend) -> None:
    """A batch takes one caption length: the longest prompt's row is the pipeline's exactly, and the
    shorter one is padded with the model's caption pad token (the pipeline masks the extra)."""
    short = "a cat"
    long = " and ".join(["two red apples", "a blue vase on top of a green square", "the night sky"] * 2)
    pair = backend.encode_prompts([short, long])
    alone = backend.encode_prompts([short])
    assert pair.embeds.shape[1] % 32 == 0 and pair.embeds.shape[1] > alone.embeds.shape[1]
    settings = SamplingSettings(height=32, width=32, steps=1, guidance=0.0, seed=1)
    both = sample(backend, pair, settings, progress=False).images
    expected = backend.pipe(
        [short, long], height=32, width=32, num_inference_steps=1, guidance_scale=0.0,
        generator=make_generator(1), output_type="pt", max_sequence_length=64,
    ).images  # fmt: skip
    assert (both[1] - expected[1]).abs().max().item() < 1e-4
    assert torch.isfinite(both).all()


def test_word_tokens_skip_the_chat_template(backend: ZImageBackend) -> None:
    encoding = backend.encode_prompts([PROMPT])
    apples = encoding.tokens_for(0, "apples")
    vase = encoding.tokens_for(0, "blue vase")
    tokenizer = backend.pipe.tokenizer
    templated = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True
    )
    vocab = tokenizer.convert_ids_to_tokens(tokenizer(templated)["input_ids"])
    # <bos> user : three red apples ... : the template's words come before the prompt's.
    assert [vocab[i] for i in apples] == ["apples"] and [vocab[i] for i in vase] == ["blue", "vase"]
    assert encoding.pooled.shape == (1, 0)


def test_z_image_tokens_roundtrip_and_match_the_models_patches(backend: ZImageBackend) -> None:
    latents = torch.randn(2, 16, 12, 16)
    tokens = backend.image_tokens(latents)
    assert tokens.shape == (2, 6 * 8, 64)
    assert torch.equal(backend.from_image_tokens(tokens, 24, 32), latents)
    patches, _, _ = backend.transformer._patchify_image(latents[0].unsqueeze(1), 2, 1)
    assert torch.equal(patches, tokens[0])


def test_a_saved_z_image_turbo_folder_loads_through_the_registry(
    backend: ZImageBackend, tmp_path: Path
) -> None:
    from scenewright.backends.registry import load_backend
    from scenewright.backends.specs import resolve_backend

    folder = tmp_path / "z-image-turbo-tiny"
    backend.pipe.save_pretrained(folder)
    loaded = load_backend(resolve_backend(str(folder)), device="cpu", dtype="float32")
    assert isinstance(loaded, ZImageBackend) and loaded.guidance_mode is GuidanceMode.NONE
    assert (loaded.defaults.steps, loaded.defaults.guidance) == (9, 0.0)
    settings = SamplingSettings(height=32, width=32, steps=2, guidance=0.0, seed=3)
    ours = sample(loaded, loaded.encode_prompts([PROMPT]), settings, progress=False).images
    same = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    assert torch.equal(ours, same)


def test_a_cfg_z_image_guides_in_the_usual_convention(backend: ZImageBackend) -> None:
    """Our scale g is the pipeline's g - 1 (it adds g (pos - neg) to pos): same image at 1e-4."""
    cfg = ZImageBackend(backend.pipe, max_sequence_length=64, distilled=False)
    assert cfg.guidance_mode is GuidanceMode.CFG
    # Prompt and negative prompt of one caption length: the pipeline's batch needs no key mask.
    settings = SamplingSettings(height=32, width=32, steps=2, guidance=4.0, seed=3, negative_prompt="a dog")
    expected = backend.pipe(
        PROMPT, negative_prompt="a dog", height=32, width=32, num_inference_steps=2, guidance_scale=3.0,
        generator=make_generator(3), output_type="pt", max_sequence_length=64,
    ).images  # fmt: skip
    ours = sample(cfg, cfg.encode_prompts([PROMPT]), settings, progress=False).images
    assert (ours - expected).abs().max().item() < 1e-4
