"""Regional's additions for small token grids: the one-way "context" mask, the text boost inside
each box, the scene prompt choice, and per-model tuned defaults (tiny16's strategy_defaults.json)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from builders import two_box_plan
from scenewright.backends.registry import ALIASES, load_backend, resolve_backend
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import region_token_masks
from scenewright.executor.attention.masks import RegionLayout
from scenewright.executor.regional import regional_edit, render_regional, text_boost_edit
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy, tuned_options
from scenewright.planner.plan import Plan
from scenewright.planner.rules import plan_with_rules

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)


@pytest.fixture(scope="module")
def backend() -> TinyBackend:
    return TinyBackend.random(SMALL, seed=3)


def plan() -> Plan:
    return two_box_plan()


def test_context_lets_boxes_read_the_canvas_one_way() -> None:
    # 2x2 grid: region 0 top-left, region 1 bottom-right, background the other two tokens.
    masks = region_token_masks([(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), None], (2, 2))
    layout = RegionLayout.build(
        [(0, 1), (1, 2), (2, 3)], masks, text_len=3, image_attention="context", background=[2]
    )
    allowed = layout.allowed()
    at = {int(p): i for i, p in enumerate(layout.order)}

    def may(a: int, b: int) -> bool:
        return bool(allowed[at[a], at[b]])

    box0, bg_a, bg_b, box1 = 3, 4, 5, 6  # image tokens in canonical order
    assert may(box0, bg_a) and may(box1, bg_b)  # a box reads the empty canvas,
    assert not may(bg_a, box0) and not may(bg_b, box1)  # the canvas never reads a box,
    assert not may(box0, box1) and not may(box1, box0)  # boxes never read each other,
    assert may(box0, 0) and not may(box0, 2)  # a box reads its own text, not the background's,
    assert may(bg_a, 2) and not may(bg_a, 0)  # and the canvas reads only the background's text.
    assert layout.segments is None  # not a partition: the per-group kernel must not take it
    region = RegionLayout.build([(0, 1), (1, 2), (2, 3)], masks, text_len=3)
    assert not region.allowed()[at[box0], at[bg_a]]  # plain regional keeps them apart
    with pytest.raises(InvalidInputError, match="image_attention"):
        RegionLayout.build([(0, 1), (1, 2), (2, 3)], masks, text_len=3, image_attention="sideways")


def test_text_boost_lands_on_each_box_s_own_words_only(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=1)
    encoding, _, mask = regional_edit(backend, plan(), settings, image_attention="context")
    assert text_boost_edit(backend, encoding, mask, settings, 0.0) is None
    boost = text_boost_edit(backend, encoding, mask, settings, 3.0)
    assert boost is not None and boost.rows == (1,)  # the conditional half of the CFG batch
    bias = boost.placed((2, 2), encoding.embeds.shape[1], batch=2, device=torch.device("cpu"))
    (s0, e0), (s1, e1) = mask.text_spans[0], mask.text_spans[1]
    words0 = [t for w in encoding.words[0] for t in w.tokens if s0 <= t < e0]
    words1 = [t for w in encoding.words[0] for t in w.tokens if s1 <= t < e1]
    assert words0 and words1
    cond = bias[1]  # (image tokens, text): token 0 is top-left (box 0), token 3 bottom-right (box 1)
    assert cond[0, words0].eq(3.0).all() and cond[3, words0].eq(0.0).all()
    assert cond[3, words1].eq(3.0).all() and cond[0, words1].eq(0.0).all()
    assert bias[0].abs().sum() == 0  # the unconditional row is untouched
    assert cond[:, mask.text_spans[2][0] :].abs().sum() == 0  # background and base prompts too


def test_boost_and_context_change_the_image_and_are_reported(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=1)
    plain = render_regional(backend, plan(), settings)
    boosted = render_regional(backend, plan(), settings, image_attention="context", text_boost=3.0)
    assert not torch.allclose(plain.sample.images, boosted.sample.images)
    assert boosted.report["text_boost"] == 3.0 and boosted.report["image_attention"] == "context"


def test_a_model_s_tuned_defaults_apply_unless_the_user_names_the_option(backend: TinyBackend) -> None:
    from scenewright.executor.regional import render_regional as function

    tuned = TinyBackend.random(
        SMALL, seed=3, strategy_defaults={"regional": {"text_boost": 2.0, "image_attention": "context"}}
    )
    assert tuned_options(function, "regional", tuned) == {"text_boost": 2.0, "image_attention": "context"}
    assert tuned_options(function, "regional", backend) == {}
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=1)
    assert run_strategy("regional", tuned, plan(), settings).report["text_boost"] == 2.0
    assert run_strategy("regional:text_boost=0.5", tuned, plan(), settings).report["text_boost"] == 0.5
    assert run_strategy("regional", backend, plan(), settings).report["text_boost"] == 0.0
    broken = TinyBackend.random(SMALL, seed=3, strategy_defaults={"regional": {"text_boost": 99}})
    with pytest.raises(InvalidInputError, match="text_boost"):
        run_strategy("regional", broken, plan(), settings)


def test_a_composition_s_own_tuning_overrides_its_base_s(backend: TinyBackend) -> None:
    from scenewright.executor.regional import render_regional as function

    defaults = {
        "regional": {"text_boost": 2.0, "region_guidance": 9.0},
        "regional+taca": {"region_guidance": 0.0},
    }
    tuned = TinyBackend.random(SMALL, seed=3, strategy_defaults=defaults)
    assert tuned_options(function, "regional", tuned) == {"text_boost": 2.0, "region_guidance": 9.0}
    assert tuned_options(function, "regional+taca", tuned) == {"text_boost": 2.0, "region_guidance": 0.0}
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=1)
    assert run_strategy("regional", tuned, plan(), settings).report["region_guidance"] == 9.0
    assert run_strategy("regional+taca", tuned, plan(), settings).report["region_guidance"] == 3.0
    typed = run_strategy("regional+taca:region_guidance=5", tuned, plan(), settings)
    assert typed.report["region_guidance"] == 5.0  # what the user types still wins
    broken = TinyBackend.random(SMALL, seed=3, strategy_defaults={"regional+taca": {"noise_tries": 99}})
    with pytest.raises(InvalidInputError, match="noise_tries"):
        run_strategy("regional+taca", broken, plan(), settings)


def test_tuned_defaults_travel_with_the_model_folder(tmp_path: Path) -> None:
    model = TinyBackend.random(SMALL, seed=3, strategy_defaults={"regional": {"text_boost": 1.5}})
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "strategy_defaults.json").read_text()) == {
        "regional": {"text_boost": 1.5}
    }
    assert TinyBackend.from_pretrained(tmp_path / "m").strategy_defaults == {"regional": {"text_boost": 1.5}}
    (tmp_path / "m" / "strategy_defaults.json").write_text("{not json")
    from scenewright.errors import BackendError

    with pytest.raises(BackendError, match=r"strategy_defaults\.json"):
        TinyBackend.from_pretrained(tmp_path / "m")


def test_tiny16_is_shipped_with_16x16_tokens_and_its_tuned_regional() -> None:
    spec = resolve_backend("tiny16")
    assert spec == ALIASES["tiny16"] and spec.family == "tiny"
    model = load_backend(spec)
    assert isinstance(model, TinyBackend)
    assert model.config.patch == 4 and model.config.image_size // model.config.patch == 16
    assert model.strategy_defaults["regional"]["image_attention"] == "context"


def test_every_face_renders_with_the_models_tuning_and_refine_repairs_with_it(tmp_path: Path) -> None:
    from scenewright.agent.nodes import Toolbox, _run_strategy
    from scenewright.executor.refine import repair_pass
    from scenewright.executor.strategies import STRATEGIES, model_options

    tuned = {"regional": {"text_boost": 1.5, "image_attention": "context", "base_ratio": 0.15}}
    model = TinyBackend.random(SMALL, seed=3, strategy_defaults=tuned)
    seen: dict[str, Any] = {}

    def regional_like(
        backend: Any,
        plan: Any,
        settings: Any,
        text_boost: float = 0.0,
        base_ratio: float = 0.3,
        image_attention: str = "region",
        **_: Any,
    ) -> Any:
        seen.update(text_boost=text_boost, base_ratio=base_ratio, image_attention=image_attention)
        return SimpleNamespace(strategy="regional")

    tools = Toolbox(
        planner=lambda *_: None,  # type: ignore[arg-type,return-value]
        backend=lambda: model,
        verifier=lambda *_: ([], None),
        out_dir=tmp_path,
        strategies={"regional": regional_like},
    )
    plan = plan_with_rules("a red circle left of a blue square").plan
    settings = SamplingSettings(64, 64, steps=2, guidance=4.0)
    _run_strategy(tools, "regional", model, plan, settings)  # the agent's faces (CLI, chat, web)
    assert seen == {"text_boost": 1.5, "base_ratio": 0.15, "image_attention": "context"}
    _run_strategy(tools, "regional:text_boost=2", model, plan, settings)
    assert seen["text_boost"] == 2.0 and seen["base_ratio"] == 0.15  # the user's option wins

    repair = model_options(STRATEGIES["refine"], "refine", model)["repair_options"]
    assert repair == {"text_boost": 1.5, "image_attention": "context", "base_ratio": 0.15}
    _, _, edits = repair_pass(model, plan, settings, repair)
    region, boost = edits
    assert region.image_attention == "context" and region.base_ratio == 0.15 and boost.maps
    assert len(repair_pass(model, plan, settings, {})[2]) == 1  # untuned: the paper's regional alone


def test_image_attention_opens_across_regions_after_open_image_after() -> None:
    from scenewright.executor.regional import regional_phases

    backend = TinyBackend.random(SMALL, seed=3)
    settings = SamplingSettings(32, 32, steps=10, guidance=3.0, seed=1)
    _, _, mask = regional_edit(backend, plan(), settings, inject_fraction=0.8, image_attention="context")
    phases = regional_phases(mask, settings, 0.3)
    assert [(p.image_attention, p.sites.steps) for p in phases] == [("context", (0, 3)), ("all", (3, 8))]
    assert all(p.text_spans == mask.text_spans and p.base_ratio == mask.base_ratio for p in phases)
    # 1.0 (the paper, the default) keeps one phase; the first phase is never empty; "all" has no second.
    assert [p.sites.steps for p in regional_phases(mask, settings, 1.0)] == [(0, 8)]
    assert [p.sites.steps for p in regional_phases(mask, settings, 0.0)] == [(0, 1), (1, 8)]
    opened = regional_edit(backend, plan(), settings, inject_fraction=0.8, image_attention="all")[2]
    assert [p.sites.steps for p in regional_phases(opened, settings, 0.3)] == [(0, 8)]


def test_open_image_after_changes_the_image_and_reports_its_phases(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=6, guidance=3.0, seed=1)
    closed = render_regional(backend, plan(), settings, inject_fraction=1.0)
    opened = render_regional(backend, plan(), settings, inject_fraction=1.0, open_image_after=0.5)
    assert closed.report["phases"] == [("region", (0, 6))]
    assert opened.report["phases"] == [("region", (0, 3)), ("all", (3, 6))]
    assert opened.sample.images.shape == closed.sample.images.shape
    assert not torch.allclose(opened.sample.images, closed.sample.images)
    with pytest.raises(InvalidInputError, match="open_image_after"):
        run_strategy("regional:open_image_after=1.5", backend, plan(), settings)


def test_guidance_steps_all_guides_the_steps_the_model_leaves_unguided() -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=1)
    partly = TinyBackend.random(
        TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, default_guidance_max_sigma=0.5), seed=3
    )
    everywhere = TinyBackend.random(SMALL, seed=3)  # the model guides every step already
    for model, differs in ((partly, True), (everywhere, False)):
        own = render_regional(model, plan(), settings, guidance_steps="model").sample.images
        every = render_regional(model, plan(), settings, guidance_steps="all").sample.images
        assert (not torch.equal(own, every)) is differs
    with pytest.raises(InvalidInputError, match="guidance_steps"):
        run_strategy("regional:guidance_steps=sometimes", everywhere, plan(), settings)


def test_the_box_pass_guides_its_object_steps_where_the_model_would_not() -> None:
    """Stitch's box pass is the first steps, the ones a toy model leaves unguided: "all" guides
    them, "model" (the default) keeps the model's interval; on a model that guides every step the
    two are the same render. The free pass takes none of the box pass's options."""
    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=2)
    partly = TinyBackend.random(
        TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, default_guidance_max_sigma=0.5), seed=3
    )
    everywhere = TinyBackend.random(SMALL, seed=3)
    for model, differs in ((partly, True), (everywhere, False)):
        own = run_strategy("stitch:object_pass=box", model, plan(), settings)
        every = run_strategy("stitch:object_pass=box:guidance_steps=all", model, plan(), settings)
        assert (not torch.equal(own.sample.images, every.sample.images)) is differs
    free = run_strategy("stitch:object_pass=free", partly, plan(), settings)
    free_with_box_options = run_strategy(
        "stitch:object_pass=free:guidance_steps=all:image_attention=context:text_boost=3",
        partly,
        plan(),
        settings,
    )
    assert torch.equal(free.sample.images, free_with_box_options.sample.images)
    with pytest.raises(InvalidInputError, match="guidance_steps"):
        run_strategy("stitch:guidance_steps=sometimes", everywhere, plan(), settings)


def test_the_stitch_hold_can_open_image_attention(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=8, guidance=3.0, seed=4)
    box = "stitch:object_pass=box:image_attention=context:hold_fraction=0.5"
    same = run_strategy(box, backend, plan(), settings)
    opened = run_strategy(f"{box}:hold_image_attention=all", backend, plan(), settings)
    assert same.report["hold_steps"] == opened.report["hold_steps"] == 4
    assert not torch.equal(same.sample.images, opened.sample.images)
    with pytest.raises(InvalidInputError, match="hold_image_attention"):
        run_strategy(f"{box}:hold_image_attention=wide", backend, plan(), settings)
