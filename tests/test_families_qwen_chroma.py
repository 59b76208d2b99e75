"""Qwen-Image and Chroma: our sampler equals their diffusers pipelines, every strategy runs on
them, and their text padding stays masked inside the attention engine's passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from family_builders import tiny_chroma_pipeline, tiny_qwen_image_pipeline
from scenewright.backends.base import Backend, PromptEncoding
from scenewright.backends.chroma import ChromaBackend
from scenewright.backends.qwen_image import QwenImageBackend
from scenewright.executor.attention import CaptureMaps, attention_engine
from scenewright.executor.attention.edits import AttentionBias
from scenewright.executor.sampler import SamplingSettings, make_generator, sample
from scenewright.executor.strategies import run_strategy, strategy_names
from scenewright.planner.plan import Plan, PlanObject, PlanRelation

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "three red apples left of a blue vase"


def test_chroma_sampler_matches_chroma_pipeline() -> None:
    pipe = tiny_chroma_pipeline()
    settings = SamplingSettings(height=32, width=48, steps=3, guidance=3.5, seed=7)
    expected = pipe(
        PROMPT,
        height=32,
        width=48,
        num_inference_steps=3,
        guidance_scale=3.5,
        generator=make_generator(7),
        output_type="pt",
        max_sequence_length=16,
    ).images
    backend = ChromaBackend(pipe, max_sequence_length=16)
    encoding = backend.encode_prompts([PROMPT])
    # T5 pads to 16 tokens; the pipeline keeps the 8 words, <bos>, <eos> and the first padding token.
    assert encoding.mask is not None and encoding.mask.sum().item() == 11 and encoding.embeds.shape[1] == 16
    assert encoding.tokens_for(0, "blue vase") == [7, 8]
    ours = sample(backend, encoding, settings, progress=False).images
    assert ours.shape == expected.shape == (1, 3, 32, 48)
    assert (ours - expected).abs().max().item() < 1e-4
    # CFG is really applied: guidance 1 (no unconditional pass) gives another image.
    plain = sample(backend, encoding, SamplingSettings(32, 48, 3, 1.0, seed=7), progress=False).images
    assert (plain - expected).abs().max().item() > 1e-4


def test_qwen_image_sampler_matches_qwen_image_pipeline() -> None:
    pipe = tiny_qwen_image_pipeline()
    settings = SamplingSettings(height=32, width=48, steps=3, guidance=3.5, seed=7)
    expected = pipe(
        PROMPT,
        negative_prompt="",
        true_cfg_scale=3.5,
        height=32,
        width=48,
        num_inference_steps=3,
        generator=make_generator(7),
        output_type="pt",
    ).images
    backend = QwenImageBackend(pipe)
    encoding = backend.encode_prompts([PROMPT])
    # The template's system part is dropped: the prompt's words come first, then <|im_end|> etc.
    assert encoding.tokens_for(0, "apples") == [2] and encoding.tokens_for(0, "blue vase") == [6, 7]
    ours = sample(backend, encoding, settings, progress=False).images
    assert ours.shape == expected.shape == (1, 3, 32, 48)
    # The pipeline runs the empty negative prompt (shorter) alone; ours pads it into one batch.
    assert (ours - expected).abs().max().item() < 1e-4
    plain = sample(backend, encoding, SamplingSettings(32, 48, 3, 1.0, seed=7), progress=False).images
    assert (plain - expected).abs().max().item() > 1e-4


def test_qwen_image_guidance_keeps_the_conditional_norm() -> None:
    backend = QwenImageBackend(tiny_qwen_image_pipeline())
    cond, uncond = torch.randn(1, 6, 8), torch.randn(1, 6, 8)
    guided = backend.combine_guidance(uncond, cond, 4.0)
    assert torch.allclose(guided.norm(dim=-1), cond.norm(dim=-1), atol=1e-5)
    direction = uncond + 4.0 * (cond - uncond)
    assert torch.allclose(torch.nn.functional.cosine_similarity(guided, direction, dim=-1), torch.ones(1, 6))


def test_encodings_of_different_lengths_batch_with_their_padding_masked() -> None:
    backend = QwenImageBackend(tiny_qwen_image_pipeline())
    long, short = backend.encode_prompts([PROMPT]), backend.encode_prompts(["a cat"])
    joined = PromptEncoding.concat([short, long])
    assert joined.embeds.shape[1] == long.embeds.shape[1] > short.embeds.shape[1]
    assert joined.mask is not None
    assert joined.mask[0].sum().item() == short.embeds.shape[1] and bool(joined.mask[1].all())
    assert torch.equal(
        joined.embeds[0, short.embeds.shape[1] :], torch.zeros_like(joined.embeds[0, short.embeds.shape[1] :])
    )


@pytest.fixture(scope="module", params=["chroma", "qwen-image"])
def family_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "chroma":
        return ChromaBackend(tiny_chroma_pipeline(), max_sequence_length=16)
    return QwenImageBackend(tiny_qwen_image_pipeline())


@pytest.mark.parametrize("edit_kind", ["zero-bias", "maps"])
def test_an_engine_that_changes_nothing_keeps_the_pipeline_output(
    family_backend: Backend, edit_kind: str
) -> None:
    """Routed through the engine's own passes (a zero bias makes every site a modified one), the
    padding mask gives the image the default processors give: the mask is kept."""
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=3)
    encoding = family_backend.encode_prompts([PROMPT])
    plain = sample(family_backend, encoding, settings, progress=False).images
    edit = (
        AttentionBias(maps={0: torch.zeros(2, 2)})
        if edit_kind == "zero-bias"
        else CaptureMaps(tokens=encoding.tokens_for(0, "apples"))
    )
    with attention_engine(family_backend, [edit]) as engine:
        routed = sample(family_backend, encoding, settings, hooks=[engine], progress=False).images
    assert (routed - plain).abs().max().item() < 1e-5
    if edit_kind == "zero-bias":
        # Without the padding mask the same passes give another image.
        with attention_engine(family_backend, [edit]) as engine:
            engine.set_padding = lambda keep, logit=None: None  # type: ignore[method-assign]
            unmasked = sample(family_backend, encoding, settings, hooks=[engine], progress=False).images
        assert (unmasked - plain).abs().max().item() > 1e-4


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


@pytest.mark.parametrize("strategy", [*strategy_names(), "stitch:object_pass=box", "stitch:object_pass=free"])
def test_every_strategy_runs_on_qwen_image_and_chroma(family_backend: Backend, strategy: str) -> None:
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=5)
    result = run_strategy(strategy, family_backend, _plan(), settings)
    pixels = np.asarray(result.image.convert("RGB"))
    assert pixels.shape == (32, 32, 3) and np.isfinite(result.sample.images.numpy()).all()
    if strategy in ("regional", "numina", "stitch", "taca"):
        vanilla = run_strategy("vanilla", family_backend, _plan(), settings)
        assert (result.sample.images - vanilla.sample.images).abs().max().item() > 1e-4


@pytest.mark.parametrize("modulation", ["scene", "paper"])
def test_concept_attention_reads_maps_on_chroma(modulation: str) -> None:
    """Chroma's double blocks take each block's own [image; text] modulation rows and no pooled
    vector: the concept stream reads the text rows, and the paper's modulation is the block's."""
    from scenewright.executor.attention.concept import ConceptAttention
    from scenewright.executor.explain import concept_vectors

    backend = ChromaBackend(tiny_chroma_pipeline(), max_sequence_length=16)
    reader = ConceptAttention(concepts=concept_vectors(backend, _plan()), modulation=modulation)
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=1)
    with attention_engine(backend, [reader]) as engine:
        sample(backend, backend.encode_prompts([PROMPT]), settings, hooks=[engine], progress=False)
    maps = reader.maps()
    assert maps.shape[-3:] == (3, 8, 8)  # apple, vase, background and torch.isfinite(maps).all()
    assert torch.allclose(maps.sum(dim=-3), torch.ones_like(maps.sum(dim=-3)), atol=1e-4)
