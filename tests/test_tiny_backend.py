from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scenewright.backends.flux import flux_image_ids
from scenewright.backends.tiny import TinyBackend, TinyConfig, velocity_from_output
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext, make_generator, sample

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, patch=4)


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


def test_sample_prediction_is_turned_into_the_flow_velocity() -> None:
    config = TinyConfig(prediction="sample")
    x0 = torch.randn(2, 64, 192)
    noise = torch.randn(2, 64, 192)
    t = torch.tensor([0.3, 0.8])
    noisy = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
    # A perfect x0 prediction gives exactly the velocity the sampler integrates.
    assert torch.allclose(velocity_from_output(config, x0, noisy, t), noise - x0, atol=1e-5)
    # A scalar t serves the whole batch; tiny t is clamped instead of dividing by ~0.
    v = velocity_from_output(config, x0, noisy, torch.tensor(0.0))
    assert torch.isfinite(v).all()
    assert torch.allclose(v, (noisy - x0) / config.min_t)
    velocity = TinyConfig(prediction="velocity")
    assert velocity_from_output(velocity, x0, noisy, t) is x0


def test_sampling_a_sample_predicting_model_ends_on_its_prediction() -> None:
    """With x0 prediction, the last Euler step (to sigma 0) lands on the model's clean image."""
    backend = TinyBackend.random(
        TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, prediction="sample")
    )
    settings = SamplingSettings(64, 64, steps=4, guidance=1.0, seed=0)
    seen: list[torch.Tensor] = []

    class Spy(SamplerHook):
        def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
            seen.append(latents.clone())
            return None

    encoding = backend.encode_prompts(["a red circle"])
    result = sample(backend, encoding, settings, hooks=[Spy()], progress=False, decode=False)
    before_last = seen[-2]
    scheduler = backend.new_scheduler()
    timesteps = backend.set_timesteps(scheduler, 4, 64, 64)
    x0 = backend.transformer(
        hidden_states=before_last, timestep=timesteps[-1:] / 1000, guidance=None,
        pooled_projections=encoding.pooled, encoder_hidden_states=encoding.embeds,
        txt_ids=torch.zeros(encoding.embeds.shape[1], 3), img_ids=flux_image_ids(8, 8, device="cpu", dtype=torch.float32),
        return_dict=False,
    )[0]  # fmt: skip
    assert torch.allclose(result.latents, x0, atol=1e-4)


def test_folders_without_a_prediction_field_load_as_velocity_models(tmp_path: Path) -> None:
    backend = TinyBackend.random(SMALL)
    backend.save_pretrained(tmp_path / "old")
    codec = tmp_path / "old" / "codec.json"
    fields = json.loads(codec.read_text())
    del fields["prediction"], fields["min_t"]
    codec.write_text(json.dumps(fields))
    assert TinyBackend.from_pretrained(tmp_path / "old").config.prediction == "velocity"


def test_bad_model_config_is_refused() -> None:
    with pytest.raises(ValueError, match="prediction"):
        TinyConfig(prediction="epsilon")
    with pytest.raises(ValueError, match="multiple of patch"):
        TinyConfig(image_size=60, patch=8)


def test_guidance_interval_limits_cfg_to_low_noise_steps() -> None:
    from scenewright.errors import InvalidInputError

    backend = TinyBackend.random(SMALL, seed=2)
    encoding = backend.encode_prompts(["a red circle"])

    def run(guidance: float, max_sigma: float | None) -> torch.Tensor:
        settings = SamplingSettings(64, 64, steps=4, guidance=guidance, seed=3, guidance_max_sigma=max_sigma)
        return sample(backend, encoding, settings, progress=False, decode=False).latents

    plain, full = run(1.0, None), run(4.0, None)
    assert torch.allclose(run(4.0, 0.0), plain, atol=1e-5)  # no step that low: no guidance at all
    assert torch.equal(run(4.0, 1.0), full)  # every step: plain CFG, diffusers' behaviour
    partial = run(4.0, 0.5)
    assert not torch.allclose(partial, plain, atol=1e-4) and not torch.allclose(partial, full, atol=1e-4)
    assert backend.defaults.guidance_max_sigma == SMALL.default_guidance_max_sigma
    with pytest.raises(InvalidInputError, match="guidance_max_sigma"):
        run(4.0, 1.5)


def test_unguided_steps_skip_the_unconditional_row_unless_a_hook_needs_it() -> None:
    from scenewright.executor.sampler import SamplerHook

    class InsideModel(SamplerHook):  # the default: a hook that may read the CFG batch
        pass

    class BetweenSteps(SamplerHook):
        needs_model_batch = False

    backend = TinyBackend.random(SMALL, seed=2)
    encoding = backend.encode_prompts(["a red circle", "a blue square"])
    settings = SamplingSettings(64, 64, steps=6, guidance=4.0, seed=3, guidance_max_sigma=0.5)
    forward = backend.forward
    rows: list[int] = []

    def counting_forward(latents: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        rows.append(latents.shape[0])
        return forward(latents, *args, **kwargs)

    backend.forward = counting_forward  # type: ignore[method-assign]
    results = {}
    for name, hooks in (("none", []), ("between", [BetweenSteps()]), ("inside", [InsideModel()])):
        rows.clear()
        results[name] = sample(backend, encoding, settings, hooks=hooks, progress=False, decode=False).latents
        results[name + " rows"] = list(rows)
    sigmas = backend.new_scheduler()
    backend.set_timesteps(sigmas, 6, 64, 64)
    guided = [float(s) <= 0.5 + 1e-6 for s in sigmas.sigmas[:6]]
    assert any(guided) and not all(guided)
    assert results["none rows"] == [4 if g else 2 for g in guided]
    assert results["between rows"] == results["none rows"]
    assert results["inside rows"] == [4] * 6
    assert torch.allclose(results["none"], results["inside"], atol=1e-5)
