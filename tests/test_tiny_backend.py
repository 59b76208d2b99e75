from __future__ import annotations

from pathlib import Path

import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext, make_generator, sample

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)


def test_codec_is_exact_and_tokens_follow_rows() -> None:
    backend = TinyBackend.random(SMALL)
    images = torch.rand(2, 3, 64, 48)
    latents = backend.encode_image(images, 64, 48)
    assert latents.shape == (2, 16 * 12, 48)
    assert torch.allclose(backend.decode(latents, 64, 48), images, atol=1e-6)
    # Token (r, c) holds pixel block rows 4r..4r+3, columns 4c..4c+3: paint one block and find it.
    marked = torch.zeros(1, 3, 64, 48)
    marked[:, :, 8:12, 20:24] = 1.0
    tokens = backend.encode_image(marked, 64, 48)
    hot = (tokens[0] > 0).any(dim=-1).nonzero().flatten().tolist()
    assert hot == [2 * 12 + 5]


def test_unknown_words_and_word_tokens() -> None:
    backend = TinyBackend.random(SMALL)
    assert backend.unknown_words("three red apples beside a blue square") == ["apples"]
    enc = backend.encode_prompts(["three red circles and a blue square"])
    assert enc.tokens_for(0, "blue square") == [6, 7]
    assert enc.embeds.shape == (1, SMALL.max_text_tokens, SMALL.text_width)


def test_save_and_load_roundtrip_gives_identical_samples(tmp_path: Path) -> None:
    backend = TinyBackend.random(SMALL, seed=1)
    backend.save_pretrained(tmp_path / "model")
    loaded = TinyBackend.from_pretrained(tmp_path / "model")
    settings = SamplingSettings(64, 64, steps=3, guidance=3.0, seed=4)
    a = sample(backend, backend.encode_prompts(["a red circle"]), settings, progress=False).images
    b = sample(loaded, loaded.encode_prompts(["a red circle"]), settings, progress=False).images
    assert torch.equal(a, b)


class _Recorder(SamplerHook):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.blocks: list[tuple[int, str, int]] = []

    def before_step(self, ctx: StepContext) -> None:
        self.steps.append(ctx.step)

    def after_block(self, ctx: StepContext, block, output):  # type: ignore[no-untyped-def]
        self.blocks.append((ctx.step, block.kind, block.index))
        return None


class _ZeroLatents(SamplerHook):
    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        return torch.zeros_like(latents) if ctx.step == ctx.num_steps - 1 else None


def test_hooks_see_every_step_and_block_and_can_replace_latents() -> None:
    backend = TinyBackend.random(SMALL)
    enc = backend.encode_prompts(["a red circle"])
    recorder = _Recorder()
    settings = SamplingSettings(32, 32, steps=3, guidance=1.0, seed=0)
    plain = sample(backend, enc, settings, progress=False)
    hooked = sample(backend, enc, settings, hooks=[recorder], progress=False)
    assert torch.equal(plain.images, hooked.images)  # observing changes nothing
    assert recorder.steps == [0, 1, 2]
    assert recorder.blocks == [(s, k, 0) for s in range(3) for k in ("double", "single")]
    zeroed = sample(backend, enc, settings, hooks=[_ZeroLatents()], progress=False)
    assert torch.allclose(zeroed.images, torch.full_like(zeroed.images, 0.5))


def test_seed_determinism_and_cfg_effect() -> None:
    backend = TinyBackend.random(SMALL)
    enc = backend.encode_prompts(["a red circle"])
    base = SamplingSettings(32, 32, steps=2, guidance=4.0, seed=9)
    a = sample(backend, enc, base, progress=False).images
    b = sample(backend, enc, base, progress=False).images
    c = sample(backend, enc, SamplingSettings(32, 32, steps=2, guidance=1.0, seed=9), progress=False).images
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    noise = backend.prepare_noise(1, 32, 32, make_generator(9))
    assert torch.equal(noise, backend.prepare_noise(1, 32, 32, make_generator(9)))
