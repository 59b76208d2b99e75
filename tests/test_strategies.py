"""Strategies on the tiny model: plumbing, and the semantics each one promises."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.regional import render_regional
from scenewright.executor.sampler import SamplerHook, SamplingSettings, StepContext
from scenewright.executor.strategies import get_strategy, run_strategy, strategy_names
from scenewright.planner.plan import Plan, PlanObject

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)


@pytest.fixture(scope="module")
def backend() -> TinyBackend:
    return TinyBackend.random(SMALL, seed=3)


def two_object_plan(first: str = "red circle") -> Plan:
    return Plan(
        prompt="a red circle left of a blue square",
        objects=[
            PlanObject(name=first.split()[1], attributes=[first.split()[0]], boxes=[(0.0, 0.0, 0.5, 1.0)]),
            PlanObject(name="square", attributes=["blue"], boxes=[(0.5, 0.0, 1.0, 1.0)]),
        ],
    )


def test_regional_keeps_each_prompt_inside_its_box(backend: TinyBackend) -> None:
    """With regions in every step and no base blend, object A's prompt reaches no pixel outside A."""
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=1)
    a = render_regional(backend, two_object_plan("red circle"), settings, base_ratio=0.0, inject_fraction=1.0)
    b = render_regional(backend, two_object_plan("green star"), settings, base_ratio=0.0, inject_fraction=1.0)
    left_a, left_b = a.sample.images[..., :16], b.sample.images[..., :16]
    right_a, right_b = a.sample.images[..., 16:], b.sample.images[..., 16:]
    assert not torch.allclose(left_a, left_b)
    assert torch.allclose(right_a, right_b, atol=1e-6)
    assert a.report["regions"] == 2 and a.strategy == "regional"


def test_regional_differs_from_vanilla_and_falls_back_without_boxes(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=2)
    plan = two_object_plan()
    regional = run_strategy("regional", backend, plan, settings)
    vanilla = run_strategy("vanilla", backend, plan, settings)
    assert not torch.allclose(regional.sample.images, vanilla.sample.images)
    no_boxes = Plan(prompt="a red circle", objects=[PlanObject(name="circle", attributes=["red"])])
    fallback = run_strategy("regional", backend, no_boxes, settings)
    assert "no boxes" in fallback.report["note"]
    assert torch.equal(
        fallback.sample.images, run_strategy("vanilla", backend, no_boxes, settings).sample.images
    )


def test_taca_changes_early_attention_and_composes(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=10, guidance=3.0, seed=4)
    plan = two_object_plan()
    vanilla = run_strategy("vanilla", backend, plan, settings)
    taca = run_strategy("taca", backend, plan, settings)
    assert taca.strategy == "taca" and not torch.allclose(taca.sample.images, vanilla.sample.images)
    combo = run_strategy("regional+taca", backend, plan, settings)
    assert combo.strategy == "regional+taca"
    assert not torch.allclose(
        combo.sample.images, run_strategy("regional", backend, plan, settings).sample.images
    )


def test_unknown_strategy_is_a_clear_error() -> None:
    assert "regional+taca" in strategy_names()
    for name in ("nope", "vanilla+taca", "regional+nope"):
        with pytest.raises(InvalidInputError, match="strategy: unknown strategy"):
            get_strategy(name)


# --------------------------------------------------------------------------- numina, stitch, refine
def count_plan(count: int = 3) -> Plan:
    box = [(0.05 + 0.3 * i, 0.3, 0.3 + 0.3 * i, 0.6) for i in range(count)]
    return Plan(
        prompt=f"{count} red circles",
        objects=[PlanObject(name="circle", count=count, attributes=["red"], boxes=box)],
    )


def test_numina_without_changes_to_make_equals_vanilla(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the reference pass already shows the count, no bias is added: the image is vanilla's."""
    import numpy as np

    from scenewright.executor import numina
    from scenewright.planner.count_layout import CountLayout, Instance

    def exact(features, cross, count):  # type: ignore[no-untyped-def]
        mask = np.zeros(cross.shape, dtype=bool)
        return CountLayout(
            instances=[Instance(mask=mask, box=(0, 0, 1, 1), origin="found")] * count, found=count
        )

    monkeypatch.setattr(numina, "build_count_layout", exact)
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    plan = Plan(prompt="two red circles", objects=[PlanObject(name="circle", count=2, attributes=["red"])])

    class Steps(SamplerHook):
        needs_model_batch = False

        def __init__(self) -> None:
            self.steps: list[int] = []

        def before_step(self, ctx: StepContext) -> None:
            self.steps.append(ctx.step)

    seen = Steps()
    result = run_strategy("numina:pipeline=ours", backend, plan, settings, hooks=[seen])
    assert result.report["layouts"]["0:circle"] == {"found": 2, "added": 0, "removed": 0}
    assert torch.equal(result.sample.images, run_strategy("vanilla", backend, plan, settings).sample.images)
    # Nothing to change: the reference pass is finished, not drawn again (vanilla's cost).
    assert result.report["continued"] and seen.steps == [0, 1, 2, 3]


def _one_added_instance(monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, SamplingSettings]:
    """NUMINA's layout patched to add one instance in the top-left corner; a plan and settings."""
    import numpy as np

    from scenewright.executor import numina
    from scenewright.planner.count_layout import CountLayout, Instance

    def add_one(features, cross, count):  # type: ignore[no-untyped-def]
        mask = np.zeros(cross.shape, dtype=bool)
        mask[:4, :4] = True
        return CountLayout(instances=[Instance(mask=mask, box=(0, 0, 0.5, 0.5), origin="added")], found=0)

    monkeypatch.setattr(numina, "build_count_layout", add_one)
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)
    return Plan(prompt="a red circle", objects=[PlanObject(name="circle", attributes=["red"])]), settings


def test_numina_biases_the_noun_where_instances_are_added(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, settings = _one_added_instance(monkeypatch)
    result = run_strategy("numina:pipeline=ours", backend, plan, settings)
    assert result.report["layouts"]["0:circle"]["added"] == 1 and not result.report["continued"]
    assert not torch.equal(
        result.sample.images, run_strategy("vanilla", backend, plan, settings).sample.images
    )


def test_numina_bias_words_object_also_biases_the_attributes(backend: TinyBackend) -> None:
    from scenewright.executor.composition import noun_tokens
    from scenewright.executor.numina import bias_tokens

    encoding = backend.encode_prompts(["three red stars and a blue circle"])
    star = PlanObject(name="star", count=3, attributes=["red"])
    nouns = noun_tokens(encoding, 0, "star")
    assert bias_tokens(encoding, star, nouns, "noun") == nouns
    both = bias_tokens(encoding, star, nouns, "object")
    red = encoding.tokens_for(0, "red")
    assert set(nouns) < set(both) and set(red) <= set(both)
    assert not set(encoding.tokens_for(0, "blue")) & set(both)  # another object's colour stays out
    bare = PlanObject(name="star", count=3)
    assert bias_tokens(encoding, bare, nouns, "object") == nouns


def test_numina_bias_words_changes_the_render_and_is_checked(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, settings = _one_added_instance(monkeypatch)
    noun = run_strategy("numina:pipeline=ours", backend, plan, settings)
    both = run_strategy("numina:pipeline=ours:bias_words=object", backend, plan, settings)
    assert both.report["bias_words"] == "object"
    assert not torch.equal(noun.sample.images, both.sample.images)
    with pytest.raises(InvalidInputError) as info:
        run_strategy("numina:bias_words=colour", backend, plan, settings)
    assert "bias_words" in str(info.value)


def test_numina_pipeline_is_checked_in_one_line() -> None:
    from scenewright.executor.numina import render_numina
    from scenewright.executor.strategies import parse_options

    with pytest.raises(InvalidInputError) as info:
        parse_options(render_numina, "numina", "pipeline=authors")
    message = str(info.value)
    assert "\n" not in message and "pipeline" in message and "paper, ours" in message
    with pytest.raises(InvalidInputError, match=r"pipeline.*paper, ours"):
        render_numina(None, two_object_plan(), SamplingSettings(32, 32, 2, 3.0), pipeline="papers")  # type: ignore[arg-type]
    # The options of our pipeline are refused with the authors' (their constants stand).
    with pytest.raises(InvalidInputError, match=r"added_strength.*pipeline=ours"):
        render_numina(None, two_object_plan(), SamplingSettings(32, 32, 2, 3.0), added_strength=2.0)  # type: ignore[arg-type]


def test_stitch_cutout_stays_in_the_box_and_keeps_the_mass() -> None:
    from scenewright.executor.stitch.box_pass import cutout

    attention = torch.zeros(8, 8)
    attention[2, 2], attention[2, 3], attention[6, 6] = 5.0, 1.0, 100.0  # (6, 6) lies outside the box
    box = torch.zeros(8, 8, dtype=torch.bool)
    box[1:5, 1:5] = True
    kept = cutout(attention, box, keep_mass=0.8)
    assert kept[2, 2] and not kept[6, 6]
    assert not (kept & ~box).any()
    assert kept.sum() == 9  # the peak grown by one token on each side


def test_stitch_chooses_the_head_that_agrees_with_the_reference() -> None:
    from scenewright.executor.stitch.box_pass import choose_head

    generator = torch.Generator().manual_seed(0)
    boxes = [torch.zeros(8, 8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)]
    boxes[0][1:5, 1:5], boxes[1][3:8, 4:8] = True, True
    references = [torch.rand(8, 8, generator=generator) for _ in boxes]
    candidates = []
    for reference in references:
        heads = torch.rand(4, 8, 8, generator=generator)
        heads[2] = 3 * reference + 0.05 * torch.rand(8, 8, generator=generator)  # agrees, other scale
        heads[1] = -reference  # anti-correlated
        heads[3] = torch.where(reference > 0.5, 1.0, 0.0) * 0  # constant: undefined, skipped
        candidates.append(heads)
    assert choose_head(candidates, references, boxes) == 2


def test_stitch_runs_and_pastes_only_inside_boxes(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=6)
    plan = two_object_plan()
    result = run_strategy("stitch:object_pass=box", backend, plan, settings)
    assert result.report["switch_step"] == 1 and 0 < result.report["pasted_tokens"] <= 64
    chosen = result.report["cutout_head"]
    assert chosen["chosen_by"] == "concept-attention"
    assert 0 <= chosen["head"] < backend.config.heads
    assert not torch.equal(
        result.sample.images, run_strategy("vanilla", backend, plan, settings).sample.images
    )


def test_stitch_can_hold_the_objects_bound_after_the_paste(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=8, guidance=3.0, seed=6)
    plan = two_object_plan()
    plain = run_strategy("stitch:object_pass=box", backend, plan, settings)
    held = run_strategy("stitch:object_pass=box:hold_fraction=0.25", backend, plan, settings)
    assert plain.report["hold_steps"] == 0 and held.report["hold_steps"] == 2
    assert held.report["switch_step"] == plain.report["switch_step"] == 2
    assert not torch.equal(held.sample.images, plain.sample.images)
    everything = run_strategy("stitch:object_pass=box:hold_fraction=1.0", backend, plan, settings)
    assert everything.report["hold_steps"] == 6  # never past the last step
    assert torch.isfinite(everything.sample.images).all()


def test_refine_changes_no_pixel_outside_its_mask(backend: TinyBackend) -> None:
    import numpy as np

    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=7)
    result = run_strategy("refine", backend, count_plan(2), settings)
    base = np.asarray(result.artifacts["base_image"])
    final = np.asarray(result.image)
    mask = result.artifacts["refine_mask"]
    assert mask.shape == (32, 32)
    assert (base[~mask] == final[~mask]).all()
    assert result.report["refine"]["verifier"] == "evaluator"  # "auto" on the embedded model's backend
    rounds = result.report["refine"]["rounds"]
    assert rounds[0]["round"] == 0 and all("checks" in r for r in rounds)
    if not any(r["kept"] for r in rounds[1:]):
        assert not mask.any() and (base == final).all()


def test_refine_repairs_a_given_image_in_place(backend: TinyBackend) -> None:
    import numpy as np

    from scenewright.executor.refine import render_refine

    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=8)
    plan = count_plan(2)
    given = run_strategy("vanilla", backend, plan, settings).image
    result = render_refine(backend, plan, settings, base="vanilla", image=given)
    assert result.artifacts["base_image"] is given
    mask = result.artifacts["refine_mask"]
    assert (np.asarray(given)[~mask] == np.asarray(result.image)[~mask]).all()
    assert result.sample.images.shape == (1, 3, 32, 32)


def test_regional_drops_the_regional_prompts_after_injection_without_changing_the_image(
    backend: TinyBackend,
) -> None:
    """Two phases (regions, then the base prompt alone) equal one call carrying every prompt."""
    from scenewright.executor.composition import sample_with_edits
    from scenewright.executor.regional import regional_edit

    settings = SamplingSettings(32, 32, steps=5, guidance=3.0, seed=9)
    plan = two_object_plan()
    two_phase = render_regional(backend, plan, settings, inject_fraction=0.4)
    encoding, negative, mask = regional_edit(backend, plan, settings, inject_fraction=0.4)
    one_call = sample_with_edits(backend, encoding, settings, [mask], negative=negative)
    assert mask.sites.steps == (0, 2)
    assert torch.allclose(two_phase.sample.images, one_call.images, atol=1e-5)


def test_guidance_is_a_no_op_when_the_prompt_is_the_negative_one(backend: TinyBackend) -> None:
    """Why Stitch runs its empty-background pass with one batch row instead of two."""
    from scenewright.executor.sampler import sample

    encoding = backend.encode_prompts([""])

    def run(guidance: float) -> torch.Tensor:
        settings = SamplingSettings(32, 32, steps=3, guidance=guidance, seed=2)
        return sample(backend, encoding, settings, progress=False, decode=False).latents

    guided, plain = run(4.0), run(1.0)
    assert torch.allclose(guided, plain, atol=1e-5)


def test_strategy_options_are_typed_and_checked(backend: TinyBackend) -> None:
    from scenewright.errors import InvalidInputError
    from scenewright.executor.regional import render_regional
    from scenewright.executor.strategies import parse_options

    assert parse_options(render_regional, "regional", "base_ratio=0.2:inject_fraction=0.5") == {
        "base_ratio": 0.2,
        "inject_fraction": 0.5,
    }
    with pytest.raises(InvalidInputError, match=r"no option 'ratio=1'.*base_ratio"):
        parse_options(render_regional, "regional", "ratio=1")
    with pytest.raises(InvalidInputError, match="not a float"):
        parse_options(render_regional, "regional", "base_ratio=high")
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=3)
    plan = two_object_plan()
    tuned = run_strategy("regional:base_ratio=0.9", backend, plan, settings)
    assert tuned.strategy == "regional:base_ratio=0.9"
    assert not torch.equal(
        tuned.sample.images, run_strategy("regional", backend, plan, settings).sample.images
    )


def test_taca_takes_its_temperature_as_options(backend: TinyBackend) -> None:
    from scenewright.executor.taca import DEFAULT_GAMMA

    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=3)
    hot = run_strategy("taca:gamma=1.5:early_fraction=0.5", backend, two_object_plan(), settings)
    assert hot.report["gamma"] == 1.5 and hot.report["early_fraction"] == 0.5
    plain = run_strategy("taca", backend, two_object_plan(), settings)
    assert plain.report["gamma"] == DEFAULT_GAMMA and not torch.equal(hot.sample.images, plain.sample.images)


def test_taca_defaults_to_the_authors_schedule(backend: TinyBackend) -> None:
    """Gamma 1.2 on the first 3 steps at any step count, as TACA's public code does; the embedded
    models pin their tuned share of the steps in their strategy_defaults.json."""
    from scenewright.backends.tiny import EMBEDDED_MODEL_DIR, STRATEGY_DEFAULTS_FILE
    from scenewright.executor.strategies import tuned_options
    from scenewright.executor.taca import render_taca, taca_edit

    paper = taca_edit().schedule
    assert [paper(s, 30) for s in range(5)] == [1.2, 1.2, 1.2, 1.0, 1.0]
    assert [paper(s, 4) for s in range(4)] == [1.2, 1.2, 1.2, 1.0]  # 3 of 4, where 10% gives 1
    share = taca_edit(1.1, early_fraction=0.1).schedule
    assert [share(s, 4) for s in range(4)] == [1.1, 1.0, 1.0, 1.0]
    assert [share(s, 30) for s in range(5)] == [1.1, 1.1, 1.1, 1.0, 1.0]
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=3)
    report = run_strategy("taca", backend, two_object_plan(), settings).report
    assert (report["gamma"], report["early_steps"]) == (1.2, 3) and "early_fraction" not in report
    for name, gamma in (("toyworld", 1.1), ("toyworld16", 1.2)):
        folder = EMBEDDED_MODEL_DIR.parent / name / STRATEGY_DEFAULTS_FILE
        embedded = SimpleNamespace(strategy_defaults=json.loads(folder.read_text()))
        pinned = tuned_options(render_taca, "taca", embedded)  # type: ignore[arg-type]
        assert pinned == {"gamma": gamma, "early_fraction": 0.1}


def test_bad_taca_options_are_refused_naming_the_valid_ones() -> None:
    from scenewright.executor.strategies import parse_options, tuned_options
    from scenewright.executor.taca import render_taca, taca_edit

    with pytest.raises(InvalidInputError, match=r"early_steps=0 to 1000") as refused:
        parse_options(render_taca, "taca", "early_steps=-2")
    assert "\n" not in str(refused.value)
    with pytest.raises(InvalidInputError, match="use one of tuned, paper"):
        parse_options(render_taca, "taca", "mode=fraction")
    with pytest.raises(InvalidInputError, match="early_steps"):
        taca_edit(early_steps=-1)
    model = SimpleNamespace(strategy_defaults={"taca": {"gamma": 7}})
    with pytest.raises(InvalidInputError, match=r"gamma=0\.5 to 2"):
        get_strategy("regional+taca", tuned_options(render_taca, "taca", model))  # type: ignore[arg-type]


def test_refine_keeps_a_round_only_when_nothing_gets_worse() -> None:
    from scenewright.executor.refine import Verdict

    before = Verdict(ok=[True, False], states=[(1.0, 1.0), (0.0, 0.0)], relations=[False])
    fixes_second = Verdict(ok=[True, True], states=[(1.0, 1.0), (1.0, 1.0)], relations=[False])
    trades_one_for_other = Verdict(ok=[False, True], states=[(0.0, 1.0), (1.0, 1.0)], relations=[True])
    fixes_relation_only = Verdict(ok=[True, False], states=[(1.0, 1.0), (0.0, 0.0)], relations=[True])
    assert fixes_second.improves_on(before)
    assert fixes_relation_only.improves_on(before)
    assert not trades_one_for_other.improves_on(before)  # the first object got worse
    assert not before.improves_on(before)  # no change is not a reason to keep a repaint


def test_refine_with_the_evaluator_verifier_never_leaves_a_worse_image(backend: TinyBackend) -> None:
    import numpy as np

    from scenewright.executor.refine import evaluator_verdict, render_refine

    plan = two_object_plan()
    for seed in range(3):
        settings = SamplingSettings(64, 64, steps=3, guidance=3.0, seed=seed)
        result = run_strategy("refine:base=vanilla:verifier=evaluator:rounds=2", backend, plan, settings)
        base, final = result.artifacts["base_image"], result.image
        assert result.report["refine"]["verifier"] == "evaluator"
        if (np.asarray(base) != np.asarray(final)).any():
            assert evaluator_verdict(final, plan).improves_on(evaluator_verdict(base, plan))
        else:  # nothing kept: every tried round was refused
            assert all(not r["kept"] for r in result.report["refine"]["rounds"][1:])
    with pytest.raises(InvalidInputError, match="verifier"):
        render_refine(backend, plan, SamplingSettings(64, 64, steps=3, guidance=3.0), verifier="judge")


def test_regions_fill_the_unboxed_space_with_the_model_s_background_prompt() -> None:
    import dataclasses

    from scenewright.executor.regional import regional_edit

    quiet = TinyBackend.random(
        dataclasses.replace(SMALL, default_background_prompt="a black background"), seed=3
    )
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0)
    encoding, _, _ = regional_edit(quiet, two_object_plan(), settings)
    assert encoding.prompts[0].split(" | ")[2] == "a black background"  # [red, blue, background, base]
    with_sky = two_object_plan().model_copy(update={"background": "night sky"})
    encoding, _, _ = regional_edit(quiet, with_sky, settings)
    assert encoding.prompts[0].split(" | ")[2] == "night sky"  # the plan's own background wins


def test_free_stitch_runs_one_row_per_instance_and_checks_its_option(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=6)
    plan = count_plan(2)
    result = run_strategy("stitch:object_pass=free", backend, plan, settings)
    assert result.report["object_pass"] == "free"
    assert result.report["switch_step"] == 2  # the free pass's own default: half the steps
    assert len(result.report["scales"]) == 2
    assert result.report["pasted_tokens"] > 0
    assert torch.isfinite(result.sample.images).all()
    with pytest.raises(InvalidInputError, match="placement of 'stitch' was removed"):
        run_strategy("stitch:object_pass=free:placement=token", backend, plan, settings)
    with pytest.raises(InvalidInputError, match="fill"):
        run_strategy("stitch:object_pass=free:fill=1.5", backend, plan, settings)
    with pytest.raises(InvalidInputError, match="object_pass"):
        run_strategy("stitch:object_pass=teleport", backend, plan, settings)
    with pytest.raises(InvalidInputError, match="object_fraction"):
        run_strategy("stitch:object_fraction=1.0", backend, plan, settings)
    # "auto" takes the free pass on a coarse grid (4x4 tokens here), the box pass on a fine one.
    auto = "stitch:object_pass=auto"
    assert run_strategy(auto, backend, plan, settings).report["object_pass"] == "free"
    from scenewright.executor.stitch import render

    monkeypatch.setattr(render, "FREE_PASS_MAX_GRID", 2)
    assert run_strategy(auto, backend, plan, settings).report["object_pass"] == "box"
    # The paper's box pass is the default.
    assert run_strategy("stitch:mode=paper", backend, plan, settings).report["object_pass"] == "box"


def test_footprint_spread_tells_a_formed_object_from_a_faint_haze() -> None:
    from scenewright.executor.stitch.free_pass import MAX_SPREAD, footprint_spread

    formed = torch.full((64,), 0.01)
    formed[[9, 10, 17, 18]] = 1.0
    haze = torch.rand(64, generator=torch.Generator().manual_seed(0)) + 0.5
    assert footprint_spread(formed) <= 4 / 64 < MAX_SPREAD < footprint_spread(haze)
    assert footprint_spread(torch.zeros(64)) == 1.0


def test_free_stitch_redraws_a_row_that_drew_nothing(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenewright.executor.stitch import free_pass

    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=6)
    monkeypatch.setattr(free_pass, "MAX_SPREAD", 0.0)  # every row looks unformed: both redraws run
    seeds: list[int] = []
    original = free_pass._object_rows

    def recording(*args: object, **kwargs: object) -> object:
        seeds.append(args[4])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(free_pass, "_object_rows", recording)
    result = run_strategy("stitch:object_pass=free", backend, two_object_plan(), settings)
    assert seeds == [6, 6 + free_pass.REDRAW_SEED_STEP, 6 + 2 * free_pass.REDRAW_SEED_STEP]
    assert len(result.report["redrawn"]) == 2 and set(result.report["redrawn"]) <= {0, 1, 2}
    assert torch.isfinite(result.sample.images).all()


@pytest.mark.parametrize("object_pass", ["box", "free"])
def test_stitch_reports_progress_through_both_phases(backend: TinyBackend, object_pass: str) -> None:
    from scenewright.executor.sampler import SamplerHook

    class Steps(SamplerHook):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def before_step(self, ctx: StepContext) -> None:
            self.seen.append(ctx.step)

    hook = Steps()
    settings = SamplingSettings(32, 32, steps=6, guidance=3.0, seed=2)
    render = get_strategy("stitch")[0]
    render(backend, two_object_plan(), settings, hooks=[hook], object_pass=object_pass)
    assert sorted(set(hook.seen)) == list(range(6))  # phase 1's steps are not silent


def test_objects_prompt_names_each_object_with_its_count_and_no_layout_words() -> None:
    from scenewright.executor.composition import objects_prompt

    plan = Plan(
        prompt="three red apples left of a tall blue vase, two mice, night sky",
        background="night sky",
        objects=[
            PlanObject(name="apple", count=3, attributes=["red"]),
            PlanObject(name="vase", prompt="a tall blue vase"),
            PlanObject(name="mouse", count=2),
        ],
    )
    assert objects_prompt(plan) == "three red apples, a tall blue vase and two mice, night sky"
    assert objects_prompt(Plan(prompt="a quiet lake")) == "a quiet lake"


def test_stitch_finishes_with_the_objects_on_a_model_without_layout_words(backend: TinyBackend) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=6)
    plan = two_object_plan()
    plan = plan.model_copy(update={"global_prompt": plan.prompt + " left of it"})
    assert not backend.knows_layout_words
    from scenewright.executor.composition import objects_prompt

    auto = run_strategy("stitch", backend, plan, settings)
    assert auto.report["finish_prompt"] == objects_prompt(plan) != plan.global_prompt
    kept = run_strategy("stitch:finish_prompt=global", backend, plan, settings)
    assert kept.report["finish_prompt"] == plan.global_prompt
    with pytest.raises(InvalidInputError, match="finish_prompt"):
        run_strategy("stitch:finish_prompt=poem", backend, plan, settings)


def test_free_stitch_runs_its_object_rows_on_a_coarser_schedule_to_the_same_noise(
    backend: TinyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenewright.executor.sampler import SamplerHook
    from scenewright.executor.stitch import free_pass, render
    from scenewright.executor.stitch.free_pass import switch_sigma

    monkeypatch.setattr(free_pass, "MAX_SPREAD", 1.0)  # no redraws: one run of the rows
    monkeypatch.setattr(render, "OBJECT_STEPS", 2)  # the rows' steps to the switch (6 shipped)

    class Schedules(SamplerHook):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int]] = []

        def before_step(self, ctx: StepContext) -> None:
            self.seen.append((ctx.num_steps, ctx.step))

    hook = Schedules()
    settings = SamplingSettings(32, 32, steps=8, guidance=3.0, seed=2)
    stitch = get_strategy("stitch")[0]
    result = stitch(backend, two_object_plan(), settings, hooks=[hook], object_pass="free")
    assert result.report["object_steps"] == 2
    assert [s for n, s in hook.seen if n == 4] == [0, 1]  # the rows: 2 steps of a 4-step schedule
    assert [s for n, s in hook.seen if n == 8] == [4, 5, 6, 7]  # phase 2: the rest of the full one
    coarse = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=2)
    assert abs(switch_sigma(backend, coarse, 2) - switch_sigma(backend, settings, 4)) < 1e-6
    with pytest.raises(InvalidInputError, match="object_steps of 'stitch' was removed"):
        run_strategy("stitch:object_steps=2", backend, two_object_plan(), settings)


def test_refine_without_an_image_or_a_base_runner_says_what_to_pass(backend: TinyBackend) -> None:
    from scenewright.executor.refine import render_refine

    with pytest.raises(InvalidInputError, match="run_base"):
        render_refine(backend, two_object_plan(), SamplingSettings(32, 32, steps=2, guidance=3.0))


def test_refine_protects_an_instance_already_in_its_box_even_when_its_object_fails() -> None:
    """A ring in its box that fails for a stray copy elsewhere must not be repainted by the grown
    masks of its failing neighbours, nor the part of it that reaches out of its box."""
    from scenewright.executor.refine import boxes_to_repaint, protected_tokens

    plan = Plan(
        prompt="a ring left of a heart",
        objects=[
            PlanObject(name="ring", boxes=[(0.0, 0.0, 0.5, 0.5)]),
            PlanObject(name="heart", boxes=[(0.5, 0.0, 1.0, 0.5)]),
        ],
    )
    maps = torch.zeros(3, 8, 8)
    maps[2] = 0.5  # background everywhere
    maps[0, 1:3, 1:5] = 1.0  # the ring: in its box (cols 0-3) and one column into the heart's (col 4)
    maps[0, 6:8, 6:8] = 1.0  # a stray copy of the ring, far from its box
    strays = {0: torch.zeros(8, 8, dtype=torch.bool), 1: torch.zeros(8, 8, dtype=torch.bool)}
    strays[0][6:8, 6:8] = True
    ok = [False, False]  # the ring fails for its stray, the heart for its empty box

    assert boxes_to_repaint(0, plan, maps, strays) == []  # the ring's box is kept
    assert boxes_to_repaint(1, plan, maps, strays) == [(0.5, 0.0, 1.0, 0.5)]
    protected = protected_tokens(plan, maps, strays, ok)
    assert protected[0:4, 0:4].all()  # the ring's box
    assert protected[1:3, 4].all()  # the ring's tokens that reach into the heart's box
    assert not protected[0, 5:8].any() and not protected[3, 4:8].any()  # the rest of the heart's box
    assert not protected[6:8, 6:8].any()  # the stray copy is repainted
    # An object that only another verifier fails (it owns its box, no stray) is redrawn whole.
    assert boxes_to_repaint(0, plan, maps, {0: torch.zeros(8, 8, dtype=torch.bool)}) == [(0.0, 0.0, 0.5, 0.5)]
    assert not protected_tokens(plan, maps, {**strays, 0: torch.zeros(8, 8, dtype=torch.bool)}, ok)[
        0:4, 0:4
    ].any()
