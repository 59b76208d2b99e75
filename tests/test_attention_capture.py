"""ConceptAttention maps, Stitch's latent paste, and the schedules, on the tiny FLUX-class model."""

from __future__ import annotations

import torch

from builders import tiny_flux_pipeline
from scenewright.backends.flux import FluxBackend
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.executor.attention import (
    ConceptAttention,
    LatentPaste,
    LatentRecorder,
    Sites,
    attention_engine,
    numina_delta,
    taca_gamma,
)
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext, sample

SMALL = TinyConfig(double_blocks=2, single_blocks=1, text_layers=1, patch=4)


def _concepts(backend: TinyBackend | FluxBackend, words: list[str]) -> torch.Tensor:
    """One token per concept, each encoded on its own (as ConceptAttention does)."""
    encoding = backend.encode_prompts(words)
    return torch.stack([encoding.embeds[i, encoding.tokens_for(i, w)[0]] for i, w in enumerate(words)])


def test_concept_maps_are_distributions_over_concepts_at_any_aspect_ratio() -> None:
    backend = TinyBackend.random(SMALL)
    encoding = backend.encode_prompts(["a red circle left of a blue square"])
    settings = SamplingSettings(64, 48, steps=3, guidance=3.0, seed=2)  # 16 x 12 tokens, CFG batch 2
    plain = sample(backend, encoding, settings, progress=False, decode=False).latents
    concept = ConceptAttention(
        concepts=_concepts(backend, ["circle", "square", "background"]),
        sites=Sites.make(double=[1], steps=(1, 3)),
    )
    with attention_engine(backend, [concept]) as engine:
        traced = sample(backend, encoding, settings, hooks=[engine], progress=False, decode=False).latents
    assert torch.equal(traced, plain)  # the concept stream never touches the image
    maps = concept.maps()
    assert maps.shape == (2, 3, 16, 12)
    assert concept.count == 2  # one chosen block x two chosen steps
    assert torch.allclose(maps.sum(dim=1), torch.ones(2, 16, 12), atol=1e-5)
    assert maps.std().item() > 0  # not uniform: the maps depend on the image


def test_concept_stream_advances_through_every_double_block() -> None:
    backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    concept = ConceptAttention(concepts=_concepts(backend, ["apple", "vase"]))
    seen: list[torch.Tensor] = []

    class Watch(SamplerHook):
        def after_block(self, ctx, block, output):  # type: ignore[no-untyped-def]
            if block.kind == "double" and concept.stream is not None:
                seen.append(concept.stream.clone())

    encoding = backend.encode_prompts(["three red apples left of a blue vase"])
    with attention_engine(backend, [concept]) as engine:
        sample(backend, encoding, SamplingSettings(32, 64, 1, 3.5), hooks=[engine, Watch()], progress=False)
    assert len(seen) == 2 and not torch.allclose(seen[0], seen[1])
    assert concept.maps().shape == (1, 2, 8, 16)


class _Latents(SamplerHook):
    def __init__(self) -> None:
        self.after: dict[int, torch.Tensor] = {}

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        self.after[ctx.step] = latents.clone()
        return None


def test_latent_paste_replaces_only_the_masked_tokens_at_its_step() -> None:
    backend = TinyBackend.random(SMALL)
    settings = SamplingSettings(32, 32, steps=3, guidance=1.0, seed=0)
    object_run = LatentRecorder(step=0)
    sample(backend, backend.encode_prompts(["a red circle"]), settings, hooks=[object_run], progress=False)
    assert object_run.latents is not None
    mask = torch.zeros(64, dtype=torch.bool)
    mask[:20] = True
    watch = _Latents()
    paste = LatentPaste(backend, step=0, token_mask=mask, source=object_run.latents)
    sample(backend, backend.encode_prompts(["a blue square"]), settings, hooks=[paste, watch], progress=False)
    pasted = watch.after[0]  # hooks run in order: the paste happened before the watcher saw step 0
    assert torch.equal(pasted[:, mask], object_run.latents[:, mask])
    assert not torch.allclose(pasted[:, ~mask], object_run.latents[:, ~mask])


def test_schedules_match_the_papers() -> None:
    active = [s for s in range(50) if numina_delta(s, 50) > 0]
    assert active == list(range(28))  # about the first 28 of 50 steps
    assert abs(numina_delta(0, 50) - 1.75) < 1e-6
    assert [s for s in range(25) if numina_delta(s, 25) > 0] == list(range(14))  # same fade at 25
    gamma = taca_gamma(1.2)
    assert [gamma(s, 30) for s in range(5)] == [1.2, 1.2, 1.2, 1.0, 1.0]  # first 3 of 30


def test_captured_maps_follow_the_region_mask_and_base_blend() -> None:
    from scenewright.executor.attention import CaptureMaps, RegionMask, region_token_masks

    backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=8)
    prompts = backend.encode_prompts(["red apples", "blue vase", "apples and a vase"])
    embeds = torch.cat([prompts.embeds[0], prompts.embeds[1], prompts.embeds[2]])[None]
    encoding = type(prompts)(["regional"], embeds, prompts.pooled[2:3], [])
    shapes = [(0, 0, 0.5, 1), (0.5, 0, 1, 1)]
    region = RegionMask.from_lengths([8, 8], shapes, base_length=8, base_ratio=0.25)
    capture = CaptureMaps(tokens=[1, 9, 17])  # "red" (region 0), "blue" (region 1), "apples" (base)
    settings = SamplingSettings(32, 48, 1, 3.5)
    with attention_engine(backend, [region, capture]) as engine:
        sample(backend, encoding, settings, hooks=[engine], progress=False, decode=False)
    maps = capture.maps()[0].flatten(1)  # (3, N)
    left = region_token_masks(shapes, backend.token_grid(32, 48))[0]
    assert maps[0, ~left].abs().max().item() == 0 and maps[0, left].min().item() > 0
    assert maps[1, left].abs().max().item() == 0 and maps[1, ~left].min().item() > 0
    assert maps[2].min().item() > 0 and maps[2].max().item() <= 0.25 + 1e-6  # the base pass's share


def test_feature_injection_records_without_change_and_writes_back_exactly() -> None:
    from scenewright.executor.attention import FeatureInjection

    backend = FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    settings = SamplingSettings(32, 48, 2, 3.5, seed=3)
    source, target = backend.encode_prompts(["red apples"]), backend.encode_prompts(["a blue vase"])

    def run(encoding, edits):  # type: ignore[no-untyped-def]
        with attention_engine(backend, edits) as engine:
            return sample(backend, encoding, settings, hooks=[engine], progress=False, decode=False).latents

    record = FeatureInjection(mode="record", parts=("q", "k", "v"))
    assert torch.equal(run(source, [record]), run(source, []))  # recording changes nothing
    assert len(record.store) == 2 * 4  # two steps x (two double + two single) blocks
    inject = FeatureInjection(mode="inject", parts=("q", "k", "v"), store=record.store)
    own = run(source, [inject]) - run(source, [])
    assert own.abs().max().item() < 1e-5  # its own features: the same image
    plain = run(target, [])
    assert not torch.allclose(run(target, [inject]), plain)  # source features steer the target
    nothing = FeatureInjection(
        mode="inject", store=record.store, token_mask=torch.zeros(96, dtype=torch.bool)
    )
    assert (run(target, [nothing]) - plain).abs().max().item() < 1e-5
