"""FLUX.2 dev and klein: our sampler against the diffusers pipelines, the attention sites, and the
options refused before any weights load. Tiny random components built from config, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from builders_flux2 import TEXT_LAYERS, tiny_flux2_backend
from scenewright.backends.base import GuidanceMode
from scenewright.backends.flux2 import Flux2Backend, flux2_mu
from scenewright.backends.flux2_specs import check_negative_prompt, check_strategy_options, guides_with_cfg
from scenewright.backends.specs import ALIASES, check_size, resolve_backend
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import CaptureMaps, ConceptAttention, attention_engine
from scenewright.executor.sampler import SamplingSettings, make_generator, sample

PROMPT = "two red apples left of a blue vase"
KINDS = {"dev": GuidanceMode.EMBEDDED, "klein": GuidanceMode.NONE, "klein-base": GuidanceMode.CFG}


@pytest.fixture(scope="module", params=list(KINDS))
def backend(request: pytest.FixtureRequest) -> Flux2Backend:
    return tiny_flux2_backend(request.param)


def test_our_sampler_is_the_pipeline(backend: Flux2Backend) -> None:
    """Text encoder and template, 4-axis RoPE, packing, the empirical shift, guidance convention
    and the VAE's batch-norm statistics: the images agree with the pipeline's to 1e-4."""
    assert backend.guidance_mode is KINDS[backend.name.removeprefix("flux2-")]
    settings = SamplingSettings(32, 48, steps=2, guidance=3.0, seed=5)
    ours = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    theirs = backend.pipe(prompt=PROMPT, height=32, width=48, num_inference_steps=2, guidance_scale=3.0,
                          generator=make_generator(5), output_type="pt", max_sequence_length=24,
                          text_encoder_out_layers=TEXT_LAYERS).images  # fmt: skip
    assert ours.shape == theirs.shape == (1, 3, 32, 48)
    assert float((ours - theirs).abs().max()) < 1e-4


def test_the_shift_follows_steps_and_tokens() -> None:
    # BFL's fit: more steps shift less below 4300 tokens; above, only the token count matters.
    assert flux2_mu(4096, 4) > flux2_mu(4096, 50)
    assert flux2_mu(8192, 4) == flux2_mu(8192, 50)


def test_latents_round_trip_through_the_vae_normalisation(backend: Flux2Backend) -> None:
    images = torch.rand(1, 3, 32, 32)
    latents = backend.encode_image(images, 32, 32)
    vae = backend.pipe.vae
    expected = backend.pipe._encode_vae_image(images * 2 - 1, generator=None)  # patchified, normalised
    assert torch.allclose(latents, expected.flatten(2).transpose(1, 2), atol=1e-5)
    spatial = backend.spatial_latents(latents, 32, 32)
    assert spatial.shape == (1, vae.config.latent_channels, 16, 16)
    assert torch.equal(backend.from_spatial_latents(spatial, 32, 32), latents)


def test_words_point_at_their_tokens_after_the_chat_template(backend: Flux2Backend) -> None:
    encoding = backend.encode_prompts([PROMPT])
    tokenizer = backend.pipe.tokenizer
    for word in ("apples", "vase"):
        (position,) = encoding.tokens_for(0, word)
        text, _, special = backend._templated(PROMPT)
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
        assert ids[position] == tokenizer.convert_tokens_to_ids(word) and position > 2  # after the template
    assert encoding.pooled.shape == (1, 0)  # FLUX.2 has no pooled vector


def test_engine_processors_reproduce_diffusers_and_read_maps(backend: Flux2Backend) -> None:
    encoding = backend.encode_prompts([PROMPT])
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=1)
    plain = sample(backend, encoding, settings, progress=False, decode=False).latents
    capture = CaptureMaps(tokens=encoding.tokens_for(0, "apples") + encoding.tokens_for(0, "vase"))
    with attention_engine(backend, [capture]) as engine:
        names = {type(p).__name__ for p in backend.transformer.attn_processors.values()}
        traced = sample(backend, encoding, settings, hooks=[engine], progress=False, decode=False).latents
    assert names == {"Flux2EngineProcessor", "Flux2ParallelEngineProcessor"}
    assert torch.equal(traced, plain)
    maps = capture.maps()
    assert maps.shape[-3:] == (2, 8, 8) and torch.isfinite(maps).all() and float(maps.max()) > 0
    assert {type(p).__name__ for p in backend.transformer.attn_processors.values()} == {
        "Flux2AttnProcessor",
        "Flux2ParallelSelfAttnProcessor",
    }


def test_concept_stream_is_the_text_stream_on_flux2_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Concepts that are the prompt's own text tokens run exactly as the model's text stream.

    Concepts have no order, so they take text position 0 (no rotation); for the comparison the
    model's text tokens are put at position 0 too (FLUX.1's text positions always are)."""
    import scenewright.backends.flux2 as flux2

    monkeypatch.setattr(
        flux2, "flux2_text_ids", lambda length, device: torch.zeros(length, 4, dtype=torch.long)
    )
    backend = tiny_flux2_backend("dev", double_blocks=2, single_blocks=1)
    encoding = backend.encode_prompts([PROMPT])
    concept = ConceptAttention(concepts=encoding.embeds[0])
    streams: list[tuple[torch.Tensor, torch.Tensor]] = []

    def after(block: torch.nn.Module, args: object, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        streams.append((concept.stream.clone(), output[0].clone()))  # type: ignore[union-attr]

    with attention_engine(backend, [concept]) as engine:
        handles = [block.register_forward_hook(after) for block in backend.transformer.transformer_blocks]
        try:
            sample(backend, encoding, SamplingSettings(32, 32, 1, 3.0), hooks=[engine], progress=False,
                   decode=False)  # fmt: skip
        finally:
            for handle in handles:
                handle.remove()
    assert len(streams) == 2
    for ours, model in streams:
        assert torch.allclose(ours, model, atol=1e-5)
    assert concept.maps().shape == (1, encoding.embeds.shape[1], 8, 8)


def test_carried_base_image_rides_between_text_and_image() -> None:
    """The authors' separate base stream on FLUX.2's one-tensor single blocks: the copy is carried
    while regional is on and dropped before the output."""
    from scenewright.executor.strategies import run_strategy
    from test_strategies_families import _plan

    backend = tiny_flux2_backend("dev")
    lengths: list[int] = []
    attn = backend.transformer.single_transformer_blocks[0].attn
    handle = attn.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["hidden_states"].shape[1]), with_kwargs=True
    )
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    try:
        separate = run_strategy("regional:base_stream=separate", backend, _plan(), settings)
    finally:
        handle.remove()
    shared = run_strategy("regional:base_stream=shared", backend, _plan(), settings)
    # Regional steps: 5 prompts of 24 tokens, 64 image tokens and their copy; later steps: the scene's.
    assert sorted(set(lengths)) == [24 + 64, 5 * 24 + 64 + 64]
    assert separate.sample.images.shape == (1, 3, 32, 32)
    assert not torch.equal(separate.sample.images, shared.sample.images)


# ----------------------------------------------------------------- refused before weights load


def test_names_sizes_and_folders_resolve_without_torch(tmp_path: Path) -> None:
    assert ALIASES["flux2-klein"].source == "black-forest-labs/FLUX.2-klein-4B"
    assert ALIASES["flux2"].family == "flux2" and ALIASES["flux2-klein-base-9b"].size_multiple == 16
    with pytest.raises(InvalidInputError, match=r"height: 1000 .* use --height 992"):
        check_size("flux2-dev", 16, 16, 1000, 1024)
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "Flux2KleinPipeline", "is_distilled": True})
    )
    spec = resolve_backend(str(tmp_path))
    assert spec.family == "flux2" and guides_with_cfg(spec) is False


@pytest.mark.parametrize("name", ["flux2-dev", "flux2-klein", "flux2-klein-9b"])
def test_a_negative_prompt_is_refused_where_nothing_guides(name: str) -> None:
    with pytest.raises(InvalidInputError, match=r"negative-prompt: .*guidance-distilled.*flux2-klein-base"):
        check_negative_prompt(ALIASES[name], "blurry")
    check_negative_prompt(ALIASES["flux2-klein-base"], "blurry")  # CFG: taken
    check_negative_prompt(ALIASES[name], "")


@pytest.mark.parametrize(
    "strategy", ["regional:pooled=box", "stitch:pooled=box_single", "regional+taca:pooled=box"]
)
def test_per_box_pooled_vectors_are_refused_on_flux2(strategy: str) -> None:
    with pytest.raises(
        InvalidInputError, match=r"strategy: pooled=box.*pooled text vector.*none of; use pooled=scene"
    ):
        check_strategy_options(ALIASES["flux2-klein"], strategy)
    check_strategy_options(ALIASES["flux-dev"], strategy)  # FLUX.1 has one
    check_strategy_options(ALIASES["flux2-klein"], "regional:pooled=scene")


# ----------------------------------------------------------------- published geometry


def test_published_flux2_geometries_and_their_work_model() -> None:
    """Parameters counted on the meta device against the published sizes, and the work model
    within 1% of torch's FLOP counter on one call of the published klein transformer."""
    from torch.utils.flop_counter import FlopCounterMode

    from scenewright.bench.geometry import geometry, transformer_class, weight_bytes
    from scenewright.bench.work import published_flops, work_meter

    billions = {
        n: weight_bytes(geometry(n), torch.bfloat16) / 2e9
        for n in ("flux2-dev", "flux2-klein-4b", "flux2-klein-9b")
    }
    assert 32.0 < billions["flux2-dev"] < 32.5 and 3.8 < billions["flux2-klein-4b"] < 4.0
    assert 9.0 < billions["flux2-klein-9b"] < 9.2
    assert geometry("flux2-klein-9b").blocks == {"double": 8, "single": 24}
    geo = geometry("flux2-klein-4b")
    with torch.device("meta"):
        model = transformer_class(geo.family)(**geo.transformer).eval()
        inputs = {"hidden_states": torch.randn(1, 256, 128), "encoder_hidden_states": torch.randn(1, 77, 7680),
                  "timestep": torch.ones(1), "img_ids": torch.zeros(256, 4), "txt_ids": torch.zeros(77, 4)}  # fmt: skip
        with FlopCounterMode(display=False) as counter, work_meter(model) as work:
            model(**inputs)
    assert work.token_rows == 256 + 77
    assert published_flops(geo, work) == pytest.approx(counter.get_total_flops(), rel=0.01)
