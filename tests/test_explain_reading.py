"""How the per-object maps are read: the reading's options, its defaults per model, and its blocks."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.explain import MapReading, map_reading, read_object_maps, reading_sites
from scenewright.executor.sampler import SamplingSettings
from scenewright.planner.plan import Plan
from scenewright.planner.rules import plan_with_rules

SMALL = TinyConfig(double_blocks=2, single_blocks=2, text_layers=1)


def test_a_reading_names_the_bad_field() -> None:
    with pytest.raises(InvalidInputError, match=r"maps\.reader"):
        MapReading(reader="saliency")
    with pytest.raises(InvalidInputError, match=r"maps\.blocks"):
        MapReading(blocks="middle")
    with pytest.raises(InvalidInputError, match=r"maps\.read_fraction"):
        MapReading(read_fraction=1.0)
    with pytest.raises(InvalidInputError, match=r"maps\.floor"):
        MapReading(floor=1.0)
    with pytest.raises(InvalidInputError, match="unknown option 'step'"):
        MapReading.from_options({"reader": "cross", "step": 3})


def test_the_model_folder_names_its_reading_else_the_family_default() -> None:
    assert map_reading(TinyBackend.random(SMALL)) == MapReading("concept", "late", 0.5)
    tuned = TinyBackend.random(
        SMALL, strategy_defaults={"maps": {"reader": "cross", "blocks": "double", "read_fraction": 0.8}}
    )
    assert map_reading(tuned) == MapReading("cross", "double", 0.8)
    broken = TinyBackend.random(SMALL, strategy_defaults={"maps": {"reader": "nope"}})
    with pytest.raises(InvalidInputError, match=r"maps\.reader"):
        map_reading(broken)


def test_reading_sites_choose_double_stream_blocks() -> None:
    backend = TinyBackend.random(SMALL)
    late, double, every = (reading_sites(backend, blocks) for blocks in ("late", "double", "all"))
    assert late.double == frozenset({1}) and late.single == frozenset()
    assert double.double == frozenset({0, 1}) and double.single == frozenset()
    assert every.double is None and every.single is None


@pytest.fixture
def scene() -> tuple[TinyBackend, Plan, SamplingSettings, Image.Image]:
    """A random small model, a two-object plan, and a flat image to read maps from."""
    plan = plan_with_rules("a red circle left of a blue square").plan
    settings = SamplingSettings(64, 64, steps=4, guidance=4.0, seed=0)
    return TinyBackend.random(SMALL, seed=1), plan, settings, Image.new("RGB", (64, 64), (30, 30, 30))


def test_cross_maps_are_distributions_and_depend_on_the_blocks_read(
    scene: tuple[TinyBackend, Plan, SamplingSettings, Image.Image],
) -> None:
    backend, plan, settings, image = scene
    double = read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5)).ownership
    every = read_object_maps(backend, image, plan, settings, MapReading("cross", "all", 0.5)).ownership
    assert double.shape == (len(plan.objects) + 1, 8, 8)
    assert torch.allclose(double.sum(dim=0), torch.ones(8, 8), atol=1e-5)
    assert not torch.allclose(double, every, atol=1e-4)
    later = read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.75)).ownership
    assert not torch.allclose(double, later, atol=1e-4)


def test_the_sheet_shows_each_objects_attention_and_the_background_share(
    scene: tuple[TinyBackend, Plan, SamplingSettings, Image.Image],
) -> None:
    from scenewright.executor.explain import named_maps

    backend, plan, settings, image = scene
    maps = read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5))
    assert maps.attention.shape == (len(plan.objects), 8, 8)
    # the attention is the reading's own probabilities, not the per-token distribution
    assert not torch.allclose(maps.attention, maps.ownership[:-1], atol=1e-4)
    assert float(maps.attention.sum(dim=0).max()) < 1.0
    named = named_maps(maps, plan)
    assert list(named) == ["1: red circle", "2: blue square", "background"]
    assert named["1: red circle"] == pytest.approx(maps.attention[0].numpy())
    concept = read_object_maps(backend, image, plan, settings, MapReading("concept", "late", 0.5))
    assert torch.equal(concept.attention, concept.ownership[:-1])


def test_the_floor_comes_off_each_map_and_leaves_its_order() -> None:
    from scenewright.executor.explain import without_floor

    maps = torch.full((2, 8, 8), 0.3)
    maps[0, 1:3, 1:3] = 0.9  # an object on a flat floor, as tiny16's stars read
    maps[1] = torch.linspace(0.0, 1.0, 64).reshape(8, 8)
    floored = without_floor(maps, 0.25)
    assert float(floored[0].max()) == pytest.approx(0.6) and int((floored[0] > 0).sum()) == 4
    # the ratio inside/outside the object's tokens goes from 3x to unbounded
    assert float(floored[0][maps[0] < 0.5].max()) == 0.0
    # a map without a flat part keeps its ranking: the same tokens stay above zero, in order
    kept = floored[1].flatten() > 0
    assert int(kept.sum()) == 48 and torch.equal(
        floored[1].flatten()[kept].argsort(), maps[1].flatten()[kept].argsort()
    )
    assert torch.equal(without_floor(maps, 0.0), maps)


def test_the_cross_reader_takes_the_floor_off_the_sheet_only(
    scene: tuple[TinyBackend, Plan, SamplingSettings, Image.Image],
) -> None:
    from scenewright.executor.explain import without_floor

    backend, plan, settings, image = scene
    raw = read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5, floor=0.0))
    floored = read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5, floor=0.25))
    assert torch.allclose(floored.attention, without_floor(raw.attention, 0.25), atol=1e-6)
    assert not torch.allclose(floored.attention, raw.attention, atol=1e-6)
    # refine's per-token ownership is read from the raw attention either way
    assert torch.allclose(floored.ownership, raw.ownership, atol=1e-6)


def test_objects_sharing_a_noun_read_their_own_tokens() -> None:
    from scenewright.executor.explain import object_tokens

    backend = TinyBackend.random(SMALL)
    plan = plan_with_rules("a red circle and a blue circle").plan
    encoding = backend.encode_prompts([plan.global_prompt])
    red, blue = (object_tokens(encoding, obj) for obj in plan.objects)
    assert red and blue and not set(red) & set(blue)
    assert red == encoding.tokens_for(0, "red circle")[-1:]
    single = plan_with_rules("two circles").plan
    circles = backend.encode_prompts([single.global_prompt])
    assert object_tokens(circles, single.objects[0]) == circles.tokens_for(0, "circles")


def test_a_stray_blob_counts_only_where_the_object_peaks_as_high_as_in_its_box() -> None:
    from scenewright.executor.refine import check_objects
    from scenewright.planner.plan import Plan, PlanObject

    plan = Plan(prompt="a red circle", objects=[PlanObject(name="circle", boxes=[(0.0, 0.0, 0.5, 0.5)])])
    attention = torch.zeros(1, 8, 8)
    attention[0, :4, :4] = 0.8  # in its box
    attention[0, 6:, 6:] = 0.3  # a weaker blob outside: spill
    background = torch.full((1, 8, 8), 0.1)
    ownership = torch.cat([attention, background]) / torch.cat([attention, background]).sum(dim=0)
    weak_checks, weak_strays = check_objects(ownership, plan, attention)
    assert weak_checks[0].ok and not weak_strays[0].any()
    assert check_objects(ownership, plan)[0][0].stray_blobs == 1  # without attention: every blob
    attention[0, 6:, 6:] = 0.9  # as strong as in its box: a stray copy
    ownership = torch.cat([attention, background]) / torch.cat([attention, background]).sum(dim=0)
    strong_checks, strong_strays = check_objects(ownership, plan, attention)
    assert strong_checks[0].stray_blobs == 1 and int(strong_strays[0].sum()) == 4


def test_maps_are_read_on_the_prompt_the_model_understands(
    scene: tuple[TinyBackend, Plan, SamplingSettings, Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model that never learned layout words reads the plan's objects named plainly ("a red circle
    # and a blue square"): in the relation sentence a repeated noun reads as one more object, and
    # on tiny16 the worst object's map fell to 0.19x inside/outside (2.52x with the objects prompt).
    backend, plan, settings, image = scene
    plan = plan.model_copy(
        update={"global_prompt": "a red circle left of the blue square, and a blue square"}
    )
    read: list[str] = []
    encode = backend.encode_prompts

    def spy(prompts: list[str]) -> object:
        read.extend(prompts)
        return encode(prompts)

    monkeypatch.setattr(backend, "encode_prompts", spy)
    read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5))
    assert read[0] == "a red circle and a blue square"  # then the negative prompt, for CFG
    read.clear()
    monkeypatch.setattr(type(backend), "knows_layout_words", True)  # as FLUX and SD3 do
    read_object_maps(backend, image, plan, settings, MapReading("cross", "double", 0.5))
    assert read[0] == plan.global_prompt
