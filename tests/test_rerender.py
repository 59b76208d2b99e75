"""``scenewright rerender IMAGE.png`` gives the same pixels from the image's own metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from scenewright.agent.rerender import replay_strategy
from scenewright.cli import main
from scenewright.tools.output import read_png_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("strategy", ["vanilla", "auto"])
def test_rerender_is_pixel_identical(
    strategy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["generate", "two red circles left of a blue square", "--out", str(first), "--seed", "3",
            "--steps", "3", "--quiet", "--strategy", strategy, "--refine-rounds", "0"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["rerender", str(first / "image.png"), "--out", str(again), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert f"image:     {again / 'image.png'}" in printed.out and printed.err == ""
    before, after = Image.open(first / "image.png"), Image.open(again / "image.png")
    assert before.size == after.size and before.tobytes() == after.tobytes()
    old, new = read_png_metadata(first / "image.png"), read_png_metadata(again / "image.png")
    assert new["plan"] == old["plan"] and new["settings"] == old["settings"]
    assert new["strategy"] == old["strategy"]


def test_rerender_without_our_metadata_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for path, needle in (
        (plain, "carries no scenewright metadata"),
        (text, "is not a readable image"),
        (tmp_path / "missing.png", "is not a file"),
    ):
        assert main(["rerender", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: image: ") and needle in err[0]
    assert not (tmp_path / "o").exists()


def test_auto_is_asked_again_and_a_named_strategy_kept() -> None:
    assert replay_strategy("auto:stitch") == "auto"
    assert replay_strategy("regional+taca") == "regional+taca"
    assert replay_strategy("") == "auto"


def test_a_refine_round_is_refused_with_the_way_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.tools.output import save_png

    path = save_png(
        Image.new("RGB", (64, 64)),
        tmp_path / "image.png",
        {"plan": {"prompt": "a red circle", "objects": []}, "settings": {"seed": 0}, "strategy": "refine"},
    )
    assert main(["rerender", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refine round" in err[0] and "rerender the image it refined" in err[0]


def test_a_drawn_seed_is_printed_recorded_and_rendered_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["generate", "a red circle", "--out", str(first), "--seed", "-1", "--steps", "2",
            "--quiet", "--strategy", "vanilla", "--refine-rounds", "0"]  # fmt: skip
    assert main(args) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("seed:")]
    assert len(shown) == 1 and "drawn for --seed -1" in shown[0]
    seed = int(shown[0].split()[1])
    meta = read_png_metadata(first / "image.png")
    assert meta["settings"]["seed"] == seed
    with Image.open(first / "image.png") as image:
        assert f"Seed: {seed}," in image.text["parameters"]  # A1111's chunk records it too
    assert main(["rerender", str(first / "image.png"), "--out", str(again), "--quiet"]) == 0
    assert Image.open(first / "image.png").tobytes() == Image.open(again / "image.png").tobytes()
