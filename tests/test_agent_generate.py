"""``generate`` on the agent's pipeline, as cli.py wires it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from scenewright import cli
from scenewright.errors import ScenewrightError
from scenewright.tools.output import read_png_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(argv: list[str]) -> int:
    args = cli.build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ScenewrightError as error:
        print(f"error: {error}")
        return 2


FAST = ["--steps", "1", "--quiet", "--strategy", "vanilla", "--refine-rounds", "0"]


def test_generate_writes_image_plan_overlay_and_keeps_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        run(["generate", "two red circles left of a blue square", "--out", str(out), "--seed", "4", *FAST])
        == 0
    )
    printed = capsys.readouterr().out
    assert f"image:     {out / 'image.png'}" in printed
    plan = json.loads((out / "plan.json").read_text())
    assert [o["count"] for o in plan["objects"]] == [2, 1]  # a real plan, not just the prompt
    meta = read_png_metadata(out / "image.png")
    assert meta["plan"] == plan and meta["strategy"] == "vanilla" and meta["settings"]["seed"] == 4
    assert Image.open(out / "overlay.png").size[0] >= 512
    sheet = Image.open(out / "attention.png")  # image + one map per object + background
    assert sheet.size[0] * sheet.size[1] >= 4 * 128 * 128

    before = (out / "image.png").read_bytes()
    assert run(["generate", "a red circle", "--out", str(out), *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().out and (out / "image.png").read_bytes() == before
    assert run(["generate", "a red circle", "--out", str(out), "--overwrite", *FAST]) == 0
    assert (out / "image.png").read_bytes() != before


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--steps", "0"], "steps: 0"),
        (["--height", "65"], "height: 65"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "stitch:nope=1"], "has no option 'nope=1'"),
        (["--strategy", "stitch:fill=big"], "option fill of 'stitch:fill=big' is not a float"),
        (["--backend", "nope"], "unknown backend 'nope'"),
    ],
)
def test_generate_refuses_bad_input_in_one_line(
    extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["generate", "a red circle", "--out", str(tmp_path / "o"), "--quiet", *extra]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0]
    assert not (tmp_path / "o" / "image.png").exists()


def test_generate_takes_strategy_options_and_records_them(tmp_path: Path) -> None:
    """The README's `--strategy stitch:object_pass=box:object_fraction=0.2` runs with its options."""
    out = tmp_path / "o"
    name = "stitch:object_pass=box:object_fraction=0.5"
    args = ["generate", "two red circles left of a blue square", "--out", str(out), "--quiet",
            "--steps", "4", "--strategy", name, "--refine-rounds", "0"]  # fmt: skip
    assert run(args) == 0
    meta = read_png_metadata(out / "image.png")
    assert meta["strategy"] == name and meta["route"] == "asked for"


def test_strategy_options_are_typed_and_checked_against_the_strategy() -> None:
    from scenewright.agent.nodes import Toolbox, strategy_options

    tools = Toolbox(planner=None, backend=None, verifier=None, out_dir=Path("."))  # type: ignore[arg-type]
    assert strategy_options(tools, "stitch:object_pass=box:object_fraction=0.5") == (
        "stitch",
        {"object_pass": "box", "object_fraction": 0.5},
    )
    assert strategy_options(tools, "stitch+taca:fill=0.7") == ("stitch+taca", {"fill": 0.7})
    with pytest.raises(ScenewrightError, match="no option"):
        strategy_options(tools, "vanilla:fill=0.7")
