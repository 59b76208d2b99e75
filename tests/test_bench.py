"""The toy-world benchmark: its cases are consistent and its judge is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from scenewright.bench.cases import SETS, BenchCase, make_case, make_cases
from scenewright.bench.toyworld import judge
from scenewright.cli import main
from scenewright.toyworld.scene import IMAGE_SIZE, Scene, SceneObject


def oracle_image(case: BenchCase) -> Image.Image:
    """Draw what the plan asks for: every instance centred in its box, three quarters its size."""
    objects = []
    for obj in case.plan.objects:
        for x0, y0, x1, y1 in obj.boxes:
            cx, cy = (x0 + x1) / 2 * IMAGE_SIZE, (y0 + y1) / 2 * IMAGE_SIZE
            half = 0.375 * min(x1 - x0, y1 - y0) * IMAGE_SIZE
            box = (cx - half, cy - half, cx + half, cy + half)
            objects.append(SceneObject(obj.name, obj.attributes[0], box))
    return Image.fromarray(Scene(objects).render())


@pytest.mark.parametrize("set_name", SETS)
def test_oracle_images_pass_and_empty_images_fail(set_name: str) -> None:
    for case in make_cases(set_name, 12, seed=1):
        assert judge(case, oracle_image(case))["passed"], case.plan.prompt
        assert not judge(case, Image.new("RGB", (64, 64)))["passed"]


def test_cases_are_reproducible_and_match_their_set() -> None:
    assert make_case("complex", 3, seed=2) == make_case("complex", 3, seed=2)
    assert make_case("complex", 3, seed=2) != make_case("complex", 3, seed=3)
    for case in make_cases("counting", 30):
        assert 2 <= case.plan.objects[0].count <= 6
    for case in make_cases("complex", 30):
        assert 4 <= sum(o.count for o in case.plan.objects) <= 6 and case.plan.relations
    for case in make_cases("binding", 20):
        kinds = [(o.attributes[0], o.name) for o in case.plan.objects]
        assert len({c for c, _ in kinds}) == len({s for _, s in kinds}) == len(kinds)


def test_judge_fails_a_swapped_layout() -> None:
    case = make_case("position", 0)
    swapped = case.plan.model_copy(deep=True)
    a, b = swapped.objects[0], swapped.objects[1]
    a.boxes, b.boxes = b.boxes, a.boxes
    image = oracle_image(BenchCase(case.set, case.index, swapped, case.seed))
    assert not judge(case, image)["passed"]


def test_bench_cli_writes_table_json_and_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "toyworld", "--n", "2", "--steps", "2", "--sets", "single,two", "--json", str(out),
            "--grid-dir", str(tmp_path / "grid"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| vanilla |" in table
    data = json.loads(out.read_text())
    assert set(data["summary"]["vanilla"]) >= {"single", "two", "single_color", "seconds_per_image"}
    assert len(data["results"]["vanilla"]["single"]) == 2
    grid = Image.open(tmp_path / "grid" / "vanilla.png").convert("RGB")
    assert grid.size[1] == 22 + 2 * (2 * 64 + 4)  # header, then one row per set
    for row, set_name in enumerate(("single", "two")):
        for column, result in enumerate(data["results"]["vanilla"][set_name]):
            corner = grid.getpixel((150 + column * (128 + 4), 22 + row * (128 + 4)))
            assert corner == ((40, 200, 80) if result["passed"] else (220, 50, 50))
    assert main(["bench", "toyworld", "--strategy", "nope", "--quiet"]) == 2


def test_table_says_how_to_get_a_time_ratio_when_vanilla_did_not_run() -> None:
    from scenewright.bench.toyworld import StrategyRun, markdown_table

    run = StrategyRun(strategy="stitch")
    run.results["position"] = [{"passed": True, "seconds": 0.5}, {"passed": False, "seconds": 0.7}]
    row = markdown_table([run], ["position"]).splitlines()[-1]
    assert row == "| stitch | 50% | 0.60 | n/a (add vanilla to --strategy) |"


def test_bench_reports_what_refine_did_to_its_base_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "toyworld", "--n", "2", "--steps", "3", "--sets", "position", "--strategy", "refine:rounds=1",
            "--json", str(out), "--grid-dir", str(tmp_path / "grid"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| refine:rounds=1 |" in table and "pixels changed outside its masks: 0" in table
    summary = json.loads(out.read_text())["summary"]["refine:rounds=1"]["refine"]
    assert summary["cases"] == 2 and summary["changed_outside_mask"] == 0
    assert (tmp_path / "grid" / "refine_rounds=1.png").is_file()


def test_time_by_objects_compares_each_strategy_with_vanilla_on_the_same_cases() -> None:
    from scenewright.bench.toyworld import StrategyRun, time_by_objects

    vanilla, stitch = StrategyRun(strategy="vanilla"), StrategyRun(strategy="stitch")
    vanilla.results["position"] = [
        {"index": 0, "objects": 2, "seconds": 1.0, "passed": False},
        {"index": 1, "objects": 3, "seconds": 1.0, "passed": False},
        {"index": 2, "objects": 3, "seconds": 3.0, "passed": False},
    ]
    stitch.results["position"] = [
        {"index": 0, "objects": 2, "seconds": 1.5, "passed": True},
        {"index": 1, "objects": 3, "seconds": 2.0, "passed": True},
        {"index": 2, "objects": 3, "seconds": 3.0, "passed": True},
    ]
    lines = time_by_objects([vanilla, stitch]).splitlines()
    assert lines[2] == "| strategy | 2 objects | 3 objects |"
    assert lines[-1] == "| stitch | 1.50x | 1.25x |"  # (2 + 3) / (1 + 3)
    assert time_by_objects([stitch]) == ""
