"""The one loader for untrusted JSON: sizes, nesting and types refused in one line, never a
``RecursionError``; seeds follow one rule on every face; ``rerender`` trusts no metadata."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from scenewright.agent.core import Agent
from scenewright.cli import main
from scenewright.errors import InvalidInputError
from scenewright.tools.output import read_png_metadata, save_png
from scenewright.untrusted import MAX_JSON_DEPTH, json_depth, load_json, parse_seed

DEEP = "[" * 5000 + "]" * 5000


# ------------------------------------------------------------------------------- the loader
def test_deep_nesting_is_refused_without_recursion() -> None:
    with pytest.raises(InvalidInputError, match="nested more than 32 levels"):
        load_json(DEEP, "plan", "fix")
    with pytest.raises(InvalidInputError, match="nested more than 32 levels"):
        load_json('{"a":' * 100_000, "plan", "fix")  # unbalanced too: counted, never parsed
    # Brackets inside strings are text, not nesting.
    assert load_json(json.dumps({"prompt": "[" * 5000}), "plan", "fix") == {"prompt": "[" * 5000}
    assert json_depth('{"a": [[1], {"b": "]]]]"}]}') == 3


def test_size_nan_and_long_integers_are_refused_in_one_line() -> None:
    for text, problem in [
        ("[" + "1," * 600_000 + "1]", "larger than 1,000,000 bytes"),
        ('{"seed": NaN}', "NaN is not a number JSON allows"),
        ("[Infinity]", "Infinity is not a number JSON allows"),
        ("9" * 5000, "not usable JSON"),
        ("{oops", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            load_json(text, "plan", "write a plan")
        assert problem in str(caught.value) and "\n" not in str(caught.value), caught.value
        assert str(caught.value).startswith("plan: ")


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(min_value=1, max_value=3000), opener=st.sampled_from(["[", '{"k":']))
def test_any_depth_loads_or_is_refused_cleanly(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "0" + closer * depth
    if depth <= MAX_JSON_DEPTH:
        value: Any = load_json(text, "x", "fix")
        for _ in range(depth):
            value = value[0] if opener == "[" else value["k"]
        assert value == 0
    else:
        with pytest.raises(InvalidInputError, match="nested more than"):
            load_json(text, "x", "fix")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_whatever_json_we_write_loads_back_unchanged(value: Any) -> None:
    text = json.dumps(value)
    if json_depth(text) <= MAX_JSON_DEPTH:
        assert load_json(text, "x", "fix") == value


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_a_value_or_one_typed_error(text: str) -> None:
    try:
        load_json(text, "x", "fix")
    except InvalidInputError as error:
        assert str(error).startswith("x: ") and "\n" not in str(error)


# ----------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize(("value", "seed"), [(7, 7), ("7", 7), (" 12 ", 12), (0, 0), (2**63 - 1, 2**63 - 1)])
def test_whole_seeds_and_digit_strings_are_accepted(value: object, seed: int) -> None:
    assert parse_seed(value) == seed


@pytest.mark.parametrize("value", [1.9, 3.0, "1.9", "x", "", [1], None, True, -1, 2**63, "-3", "٣"])
def test_other_seeds_are_refused_never_rounded(value: object) -> None:
    with pytest.raises(InvalidInputError, match=r"^seed: "):
        parse_seed(value)


def test_agent_takes_seed_strings_and_refuses_fractions_and_empty_threads(tmp_path: Path) -> None:
    agent = Agent(out_dir=tmp_path, planner=lambda p, s: pytest.fail("no plan for a refused turn"))
    with pytest.raises(InvalidInputError, match=r"^seed: 1.9"):
        agent.run("a red circle", seed=1.9)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^thread_id: is empty"):
        agent.run("a red circle", thread_id="")
    with pytest.raises(InvalidInputError, match=r"^thread_id: "):
        Agent(out_dir=tmp_path, thread_id="a\x1bb")
    assert Agent(out_dir=tmp_path, seed="7").seed == 7  # type: ignore[arg-type]
    assert agent.render_plan(DEEP).errors[0].startswith("plan: is nested more than 32 levels")


# -------------------------------------------------------------------------------- rerender
GOOD_PLAN = {"prompt": "a red circle", "objects": [{"name": "circle", "attributes": ["red"]}]}
GOOD_SETTINGS = {"height": 64, "width": 64, "steps": 2, "guidance": 1.0, "seed": 3, "negative_prompt": ""}


def _png(tmp_path: Path, meta: Any, raw: str | None = None) -> Path:
    from PIL.PngImagePlugin import PngInfo

    path = tmp_path / "in.png"
    info = PngInfo()
    info.add_text("scenewright", json.dumps(meta) if raw is None else raw)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def _meta(**changes: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"plan": GOOD_PLAN, "settings": dict(GOOD_SETTINGS), "strategy": "vanilla",
                            "backend": {"name": "tiny", "dtype": "float32"}}  # fmt: skip
    for key, value in changes.items():
        if key in GOOD_SETTINGS:
            meta["settings"][key] = value
        else:
            meta[key] = value
    return meta


@pytest.mark.parametrize(
    ("meta", "raw", "needle"),
    [
        (None, '{"plan": {}, "settings": {"x": ' + DEEP + "}}", "nested more than 32"),
        (None, '{"plan": {}, "settings": {}, "x": NaN}', "NaN is not a number"),
        (None, "[1, 2]", "not a JSON object"),
        (_meta(backend="tiny"), None, "backend"),
        (_meta(backend=["tiny"]), None, "backend"),
        (_meta(plan=[1]), None, "without a plan and settings"),
        (_meta(seed="x"), None, "seed"),
        (_meta(seed=[1]), None, "seed"),
        (_meta(seed=3.9), None, "seed"),
        (_meta(height=0), None, "height: 0 cannot be taken"),
        (_meta(steps=0), None, "steps: 0 is outside"),
        (_meta(steps="3"), None, "steps"),
        (_meta(guidance=-1.0), None, "guidance: -1.0"),
        (_meta(negative_prompt="x" * 400_000), None, "negative_prompt"),
        (_meta(strategy=7), None, "strategy"),
        (_meta(backend={"name": "someone/model"}), None, "--allow-backend-from-metadata"),
        (_meta(backend={"name": "/tmp/elsewhere"}), None, "--allow-backend-from-metadata"),
    ],
)
def test_rerender_refuses_hostile_metadata_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], meta: Any, raw: str | None, needle: str
) -> None:
    path = _png(tmp_path, meta, raw)
    assert main(["rerender", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_metadata_backend_is_loaded_only_when_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    # A folder whose pipeline names custom code: refused in one line, its code never imported.
    (folder / "model_index.json").write_text(json.dumps({"_class_name": ["evil_module", "EvilPipeline"]}))
    path = _png(tmp_path, _meta(backend={"name": str(folder)}))
    assert main(["rerender", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "--allow-backend-from-metadata" in capsys.readouterr().err
    assert main(["rerender", str(path), "--out", str(tmp_path / "o"), "--allow-backend-from-metadata"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "custom-code checkpoint" in err[0], err
    assert not (tmp_path / "o").exists()


def test_metadata_written_by_us_round_trips_through_the_loader(tmp_path: Path) -> None:
    meta = _meta()
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "ours.png", meta)
    assert read_png_metadata(path) == meta
    assert not math.isnan(read_png_metadata(path)["settings"]["guidance"])


def test_an_empty_image_differs_from_the_plan_whatever_the_verifier_says(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from scenewright.agent.core import AgentResult
    from scenewright.agent.nodes import BLANK_NOTE, verify_node
    from scenewright.agent.web import _status

    black = tmp_path / "black.png"
    Image.new("RGB", (64, 64), (1, 1, 1)).save(black)
    tools = SimpleNamespace(verifier=lambda image, plan, report: ([], None))  # a model it cannot judge
    state: Any = {"plan": GOOD_PLAN, "paths": {"image": str(black)}, "notes": []}
    update = verify_node(state, tools)  # type: ignore[arg-type]
    assert update["verified"] is False and update["notes"] == [BLANK_NOTE]
    drawn = tmp_path / "drawn.png"
    picture = Image.new("RGB", (64, 64))
    picture.paste((230, 60, 60), (10, 10, 40, 40))
    picture.save(drawn)
    assert verify_node({**state, "paths": {"image": str(drawn)}}, tools)["verified"] is None  # type: ignore[arg-type]
    assert _status(AgentResult("done", "main", verified=False)) == "**done**: differs from the plan"
    assert _status(AgentResult("done", "main", verified=True)) == "**done**: matches the plan"


def test_the_box_editor_checks_every_field_and_the_pixel_count_before_decoding(tmp_path: Path) -> None:
    from scenewright.agent.web_boxes import MAX_EDITOR_PIXELS, checked_annotator, plan_from_boxes

    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64)).save(small)
    huge = tmp_path / "huge.png"
    Image.new("1", (12_000, 12_000)).save(huge)  # a few hundred KB on disk, 144 M pixels decoded
    assert MAX_EDITOR_PIXELS < 12_000 * 12_000
    image = {"path": str(small), "meta": {"_type": "gradio.FileData"}}
    box = {"label": "red circle", "xmin": 1, "ymin": 1, "xmax": 30, "ymax": 30}
    editor = checked_annotator(None, image_type="numpy")
    plan = {"prompt": "a red circle", "objects": [{"name": "circle", "attributes": ["red"], "count": 1}]}
    for payload, problem in [
        ({}, "the box editor is empty"),
        ({"image": None, "boxes": [box]}, "the box editor is empty"),
        (
            {"image": image, "boxes": [{"label": "red circle", "ymin": 1, "xmax": 3, "ymax": 3}]},
            "no number xmin",
        ),
        ({"image": image, "boxes": [{**box, "xmin": "3"}]}, "no number xmin"),
        ({"image": image, "boxes": [{**box, "xmax": float("nan")}]}, "no number xmax"),
        ({"image": image, "boxes": "x"}, "not a list"),
        ({"image": image, "boxes": [box] * 500}, "not a list of at most 120"),
        ({"image": {**image, "path": str(huge)}, "boxes": [box]}, "12,000 x 12,000 pixels"),
    ]:
        value = editor.preprocess(editor.data_model.model_validate(payload))
        with pytest.raises(InvalidInputError) as caught:
            plan_from_boxes(plan, value)
        assert str(caught.value).startswith("boxes: ") and problem in str(caught.value), (
            payload,
            caught.value,
        )
    value = editor.preprocess(editor.data_model.model_validate({"image": image, "boxes": [box]}))
    assert plan_from_boxes(plan, value)["objects"][0]["boxes"] == [[0.0156, 0.0156, 0.4688, 0.4688]]
