"""``generate --grid``: axes checked before torch, one render per cell, a labelled grid image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from scenewright.agent.grid import MAX_CELLS, grid_cells, parse_grid
from scenewright.cli import main
from scenewright.errors import InvalidInputError
from scenewright.tools.grid import GAP, HEADER_HEIGHT, TILE, GridCell, xy_grid
from scenewright.tools.output import read_png_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_axes_are_read_as_their_options_and_cells_run_row_by_row() -> None:
    axes = parse_grid(["seed=1,2,2,3", "strategy=vanilla,stitch:fill=0.7"])
    assert [a.name for a in axes] == ["seed", "strategy"] and axes[0].values == (1, 2, 3)  # duplicates gone
    cells = list(grid_cells(axes))
    assert [c.settings for c in cells[:4]] == [
        {"seed": 1, "strategy": "vanilla"}, {"seed": 2, "strategy": "vanilla"},
        {"seed": 3, "strategy": "vanilla"}, {"seed": 1, "strategy": "stitch:fill=0.7"},
    ]  # fmt: skip
    assert cells[3].folder_name() == "seed-1_strategy-stitch_fill=0.7"
    assert parse_grid(["guidance=2,4.5"])[0].label(4.5) == "guidance=4.5"
    drawn = parse_grid(["seed=-1"])[0].values[0]
    assert 0 <= drawn < 2**32


@pytest.mark.parametrize(
    ("texts", "said"),
    [
        (["colour=red,blue"], "grid: 'colour' is not an axis; use --grid NAME=V1,V2"),
        (["seed"], "grid: 'seed' is not an axis"),
        (["seed=1,,2"], "grid: axis seed has an empty value"),
        (["seed=a"], "grid: seed value 'a' is not a whole number"),
        (["steps=0"], "grid: steps value '0': 0 is outside 1..1000"),
        (["guidance=nan"], "grid: guidance value 'nan': nan is not a finite number"),
        (["strategy=nope"], "grid: strategy value 'nope': unknown strategy 'nope'"),
        (["seed=1,2", "seed=3"], "grid: axis seed is given twice"),
        (["seed=1", "steps=1", "guidance=1"], "grid: 3 axes given"),
        (
            ["seed=" + ",".join(map(str, range(MAX_CELLS // 2 + 1))), "steps=1,2"],
            "grid: 66 cells; render at most 64",
        ),
    ],
)
def test_bad_axes_are_one_line(texts: list[str], said: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_grid(texts)
    assert str(caught.value).startswith(said)
    assert "\n" not in str(caught.value)


def test_a_bad_grid_is_refused_before_torch_loads(tmp_path: Path) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from scenewright.cli import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        f"    code = main(['generate', 'a red circle', '--grid', 'colour=1,2', '--out', {str(tmp_path / 'o')!r}])\n"
        "print(json.dumps([code, err.getvalue(), 'torch' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, err, torch_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 2 and not torch_loaded and len(err.strip().splitlines()) == 1
    assert err.startswith("error: grid: 'colour' is not an axis")
    assert not (tmp_path / "o").exists()


def test_the_grid_image_puts_each_cell_under_its_labels() -> None:
    colours = [[(200, 0, 0), (0, 200, 0), (0, 0, 200)], [(200, 200, 0), (0, 200, 200), (200, 0, 200)]]
    cells = [[GridCell(Image.new("RGB", (64, 64), c), "ok") for c in row] for row in colours]
    sheet = xy_grid(cells, ["seed=1", "seed=2", "seed=3"], ["steps=10", "steps=20"], title="a title")
    left = sheet.width - 3 * (TILE + GAP) - GAP
    top = sheet.height - 2 * (TILE + 18 + GAP) - GAP
    assert left > 0 and top >= HEADER_HEIGHT
    for r, row in enumerate(colours):
        for c, colour in enumerate(row):
            x = left + GAP + c * (TILE + GAP) + TILE // 2
            y = top + GAP + r * (TILE + 18 + GAP) + TILE // 2
            assert sheet.getpixel((x, y)) == colour
    header = sheet.crop((left, top - HEADER_HEIGHT, sheet.width, top)).convert("L")
    assert header.getextrema()[1] > 150  # the column labels are drawn
    with pytest.raises(ValueError, match="rows of 3 cells"):
        xy_grid([cells[0][:2]], ["a", "b", "c"])


def test_generate_grid_renders_each_cell_once_and_writes_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g"
    argv = ["generate", "a red circle", "--grid", "seed=1,2", "--grid", "steps=1,2", "--out", str(out),
            "--quiet", "--strategy", "vanilla", "--refine-rounds", "0"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert [line.split(":")[0] for line in printed.splitlines() if line.startswith("cell ")] == [
        "cell 1/4 (seed=1, steps=1)", "cell 2/4 (seed=2, steps=1)",
        "cell 3/4 (seed=1, steps=2)", "cell 4/4 (seed=2, steps=2)",
    ]  # fmt: skip
    for seed in (1, 2):
        for steps in (1, 2):
            meta = read_png_metadata(out / f"seed-{seed}_steps-{steps}" / "image.png")
            assert (meta["settings"]["seed"], meta["settings"]["steps"]) == (seed, steps)
    with Image.open(out / "grid.png") as grid:
        assert grid.width > 2 * TILE and grid.height > 2 * TILE
    assert f"grid:      {out / 'grid.png'}" in printed
    assert main(argv) == 2  # the cells exist now: refused without --overwrite, before rendering
    assert "already exists" in capsys.readouterr().err


def test_a_grid_is_refused_beside_several_seeds() -> None:
    import argparse

    from scenewright.agent.grid import check_grid_options

    for extra in ({"seeds": "0-3", "n_images": None}, {"seeds": None, "n_images": 4}):
        args = argparse.Namespace(grid=["steps=1,2"], **extra)
        with pytest.raises(
            InvalidInputError, match=r"^grid: is given with --seeds or --n-images; vary the seed"
        ):
            check_grid_options(args)
    assert check_grid_options(argparse.Namespace(grid=None, seeds="0-3", n_images=None)) == []
