"""``generate`` as a tool: numbered folders, several seeds with a contact sheet, per-object lines,
a quiet mode that prints only results, and one line for what the embedded model cannot draw."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenewright.agent.contact_sheet import LABEL_HEIGHT, TILE, Tile, contact_sheet
from scenewright.agent.fit_checks import background_note, check_trained_size
from scenewright.agent.object_report import exact_lines, verdict
from scenewright.agent.run_folders import choose_seeds, fresh_run_folder, parse_seeds
from scenewright.cli import main
from scenewright.errors import InvalidInputError
from scenewright.planner.plan import Plan, PlanObject, PlanRelation
from scenewright.toyworld.scene import Scene, SceneObject

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--steps", "1", "--quiet", "--strategy", "vanilla", "--refine-rounds", "0"]


# ------------------------------------------------------------------------- numbered folders
def test_fresh_run_folders_count_up_and_never_reuse(tmp_path: Path) -> None:
    root = tmp_path / "out"
    assert fresh_run_folder(root) == root / "0001"
    (root / "0007").mkdir()
    (root / "notes").mkdir()
    assert fresh_run_folder(root) == root / "0008"
    assert fresh_run_folder(root) == root / "0009"


def test_generate_without_out_writes_numbered_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for expected in ("0001", "0002"):
        assert main(["generate", "a red circle", *FAST]) == 0
        printed = capsys.readouterr().out
        assert f"folder:    {Path('out') / expected}" in printed
        assert Image.open(tmp_path / "out" / expected / "image.png").size == (64, 64)


def test_a_refused_generate_takes_no_numbered_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "a red circle", "--quiet", "--strategy", "nope"]) == 2
    assert "unknown strategy" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize(
    ("text", "seeds"), [("0-3", [0, 1, 2, 3]), ("0,3,5", [0, 3, 5]), ("2-3,7,2", [2, 3, 7]), ("4", [4])]
)
def test_seed_lists(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "needle"), [("a-b", "not a seed list"), ("5-2", "backwards"), ("0-99", "more than")]
)
def test_bad_seed_lists_are_one_line(text: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        parse_seeds(text)


def test_n_images_counts_from_seed_and_must_agree_with_seeds() -> None:
    assert choose_seeds(5, None, 3) == [5, 6, 7]
    assert choose_seeds(5, None, None) == [5]
    assert choose_seeds(0, "1,2", 2) == [1, 2]
    with pytest.raises(InvalidInputError, match="n-images"):
        choose_seeds(0, "1,2", 3)


def test_several_seeds_write_subfolders_and_a_labelled_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    assert main(["generate", "two red circles", "--seeds", "0,2", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    one = Image.open(out / "seed-0" / "image.png")
    two = Image.open(out / "seed-2" / "image.png")
    assert one.tobytes() != two.tobytes()  # different seeds, different images
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width >= 2 * TILE and sheet.height >= TILE + LABEL_HEIGHT
    assert "seed 0:" in printed and "seed 2:" in printed and "sheet:" in printed
    # Again into the same folder: refused in one line, nothing replaced.
    before = (out / "contact_sheet.png").read_bytes()
    assert main(["generate", "two red circles", "--seeds", "0,2", "--out", str(out), *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "contact_sheet.png").read_bytes() == before


def test_sheet_labels_every_tile() -> None:
    red = Image.new("RGB", (64, 64), (230, 40, 40))
    sheet = np.asarray(
        contact_sheet([Tile(red, 0, "matches the plan"), Tile(red, 1, "differs from the plan")])
    )
    for column in range(2):
        x0 = 6 + column * (TILE + 6)
        label = sheet[6 + TILE : 6 + TILE + LABEL_HEIGHT, x0 : x0 + TILE]
        assert (label.max(axis=-1) > 150).sum() > 50  # text drawn under the tile
        tile = sheet[6 : 6 + TILE, x0 : x0 + TILE]
        assert (tile == (230, 40, 40)).all(axis=-1).mean() > 0.9  # the image, scaled to the tile


# ---------------------------------------------------------------------- per-object lines
def _plan_two_circles_left_of_square() -> Plan:
    return Plan(
        prompt="two red circles left of a blue square",
        objects=[
            PlanObject(
                name="circle", count=2, attributes=["red"], boxes=[(0.0, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 1.0)]
            ),
            PlanObject(name="square", count=1, attributes=["blue"], boxes=[(0.5, 0.25, 1.0, 0.75)]),
        ],
        relations=[PlanRelation(subject=0, relation="left of", object=1)],
    )


def _image(objects: list[SceneObject]) -> Image.Image:
    return Image.fromarray(Scene(objects).render())


def test_object_lines_say_found_colour_boxes_and_relations() -> None:
    plan = _plan_two_circles_left_of_square()
    good = _image(
        [SceneObject("circle", "red", (6, 6, 24, 24)), SceneObject("circle", "red", (6, 40, 24, 58)),
         SceneObject("square", "blue", (40, 22, 58, 40))]
    )  # fmt: skip
    lines = exact_lines(good, plan)
    assert lines[0].text == (
        "[0] red circle: 2/2 found; colour red; in its boxes; left of blue square: holds"
    )
    assert lines[1].text == "[1] blue square: 1/1 found; colour blue; in its boxes"
    assert verdict(lines, True) == "matches the plan"

    # One circle drawn green, the square on the left: found 1/2, the colour and the relation say why.
    bad = _image(
        [SceneObject("circle", "red", (40, 6, 58, 24)), SceneObject("circle", "green", (40, 40, 58, 58)),
         SceneObject("square", "blue", (6, 22, 24, 40))]
    )  # fmt: skip
    lines = exact_lines(bad, plan)
    assert lines[0].text.startswith("[0] red circle: 1/2 found; colour red (also drawn in green)")
    assert "left of blue square: fails" in lines[0].text and lines[0].ok is False
    # Never "matches" when a line fails, whatever the verifier said.
    assert verdict(lines, True) == "differs from the plan"


def test_too_many_is_not_a_match() -> None:
    plan = Plan(prompt="a red star", objects=[PlanObject(name="star", attributes=["red"])])
    two = _image([SceneObject("star", "red", (6, 6, 26, 26)), SceneObject("star", "red", (36, 36, 58, 58))])
    lines = exact_lines(two, plan)
    assert (
        lines[0].text.startswith("[0] red star: 2/1 found")
        and verdict(lines, True) == "differs from the plan"
    )


def test_generate_prints_one_line_per_object_and_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    assert main(["generate", "two red circles left of a blue square", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out.splitlines()
    objects = [line for line in printed if line.startswith("[")]
    assert [line.split(":")[0] for line in objects] == ["[0] red circle", "[1] blue square"]
    assert "left of blue square:" in objects[0]
    said = [line for line in printed if line.startswith("verdict:")]
    assert len(said) == 1
    assert ("matches the plan" in said[0]) == all(
        "/" in line
        and line.split(": ")[1].split("/")[0] == line.split("/")[1].split(" ")[0]
        and "fails" not in line
        and "not in its" not in line
        for line in objects
    )


# ----------------------------------------------------------------------------------- quiet
def test_quiet_prints_only_results(tmp_path: Path) -> None:
    """No progress bar of ours or of the libraries (transformers' "Loading weights"), no timing."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenewright",
            "generate",
            "a red circle",
            "--out",
            str(tmp_path / "q"),
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    keys = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert keys <= {"folder", "image", "plan", "overlay", "attention", "[0] red circle", "verdict"}
    assert "verdict" in keys


# -------------------------------------------------------------- what the model cannot draw
def test_sizes_far_from_the_trained_one_are_refused_near_ones_warned() -> None:
    assert check_trained_size("tiny", 64, None, 64) == []
    warned = check_trained_size("tiny", 64, 96, None)
    assert len(warned) == 1 and "trained on 64 px" in warned[0]
    with pytest.raises(InvalidInputError, match=r"height: 256 px is more than 2x .*use --height 64"):
        check_trained_size("tiny", 64, 256, None)


def test_generate_refuses_256_px_on_the_embedded_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "a red circle", "--height", "256", "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: height: 256 is larger than backend 'tiny' can draw (at most 128); use --height 128 or less"
    ]
    assert not (tmp_path / "o").exists()


def test_the_size_bounds_are_the_models_own_and_the_docs_say_them() -> None:
    """The spec checked before torch and the README give the range the loaded backend takes."""
    import json

    from scenewright.backends.specs import ALIASES, EMBEDDED_MODEL_DIR, TINY16_DIR, tiny_spec

    for name, folder in (("tiny", EMBEDDED_MODEL_DIR), ("tiny16", TINY16_DIR)):
        codec = json.loads((folder / "codec.json").read_text())
        assert ALIASES[name] == tiny_spec(name, ALIASES[name].source, codec["patch"], codec["image_size"])
        assert (ALIASES[name].min_size, ALIASES[name].max_size) == (32, 128)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "64 px (32 to 128 px taken)" in readme


@pytest.mark.parametrize(
    ("background", "said"),
    [
        (None, None),
        ("on a black background", None),
        ("a dark background", None),
        ("on a white background", "'on a white background'"),
        ("at night", "'at night'"),
        ("at night, in a forest", "'at night', 'in a forest'"),
    ],
)
def test_backgrounds_the_toy_world_cannot_draw(background: str | None, said: str | None) -> None:
    note = background_note(background, "tiny")
    if said is None:
        assert note is None
    else:
        assert note is not None and f"cannot draw {said};" in note


def test_generate_reports_an_undrawable_background(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "a red circle on a white background", "--out", str(tmp_path / "o"), *FAST]
    assert main(args) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "background" in line]
    assert warned == [
        "warning: background: backend 'tiny' cannot draw 'on a white background'; it draws shapes on "
        "black only (see `scenewright vocab`)"
    ]


def test_an_interrupted_seed_leaves_no_folder_and_no_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenewright.agent import generate

    real = generate._render

    def stopped_after_writing(agent: object, prompt: str, seed: int, quiet: bool, label: str = "") -> object:
        result = real(agent, prompt, seed, quiet, label)  # type: ignore[arg-type]
        if seed == 2:  # its files are written: Ctrl-C before the turn is over
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(generate, "_render", stopped_after_writing)
    out = tmp_path / "o"
    assert main(["generate", "two red circles", "--seeds", "0,2", "--out", str(out), *FAST]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["seed-0"]  # no seed-2, no staging, no sheet
    assert sorted(p.name for p in (out / "seed-0").iterdir()) == [
        "attention.png",
        "image.png",
        "overlay.png",
        "plan.json",
    ]


def test_piped_output_has_no_bar_fragments_and_done_in_counts_the_whole_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not --quiet, stderr not a terminal: no carriage-return redraws; "done in" is from the
    process's start (this test process began long before the call)."""
    from scenewright.terminal import process_seconds

    before = process_seconds()
    argv = ["generate", "a red circle", "--out", str(tmp_path / "o"), "--steps", "1", "--strategy", "vanilla"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "%" not in err
    assert "execute" in err.splitlines()  # one plain line a stage instead
    done = [line for line in err.splitlines() if line.startswith("done in ")]
    assert len(done) == 1 and float(done[0].split()[2].rstrip("s")) >= before
