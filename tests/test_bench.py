"""The toy-world benchmark: its cases are consistent and its judge is exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    from scenewright.bench.toyworld import FAIL_COLOUR, LABEL_BAND, MARK_BOX, PASS_COLOUR

    out = tmp_path / "bench.json"
    args = ["bench", "toyworld", "--n", "2", "--steps", "2", "--sets", "single,two", "--json", str(out),
            "--grid-dir", str(tmp_path / "grid"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "| vanilla |" in captured.out
    assert "Legend: one column per prompt set" in captured.out
    assert captured.err == ""  # --quiet: no progress lines
    data = json.loads(out.read_text())
    assert set(data["summary"]["vanilla"]) >= {"single", "two", "single_color", "seconds_per_image"}
    assert len(data["results"]["vanilla"]["single"]) == 2
    grid = Image.open(tmp_path / "grid" / "vanilla.png").convert("RGB")
    row_height = 2 * 64 + LABEL_BAND + 4
    assert grid.size[1] == 22 + 2 * row_height  # header, then one row per set: tiles over label bands
    for row, set_name in enumerate(("single", "two")):
        for column, result in enumerate(data["results"]["vanilla"][set_name]):
            left, top = 150 + column * (128 + 4), 22 + row * row_height
            colour = PASS_COLOUR if result["passed"] else FAIL_COLOUR
            assert grid.getpixel((left, top)) == colour  # the tile's frame
            band = grid.crop((left, top + 128, left + 128, top + 128 + LABEL_BAND))
            assert band.getpixel((MARK_BOX[0], MARK_BOX[1])) == colour  # the pass/fail mark
            assert band.getpixel((127, LABEL_BAND - 1)) == (245, 245, 245)  # the band's ground
            dark = int((np.asarray(band)[16:].max(axis=-1) < 150).sum())
            assert dark > 30  # the prompt is written in it
    assert main(["bench", "toyworld", "--strategy", "nope", "--quiet"]) == 2


def test_label_band_marks_a_failed_case_red_and_shortens_its_prompt() -> None:
    from scenewright.bench.toyworld import FAIL_COLOUR, LABEL_BAND, MARK_BOX, PASS_COLOUR, label_band

    case = make_case("complex", 0, seed=0)
    case.plan.prompt = "three red circles left of a blue square and a green triangle on the right " * 3
    failed, passed = label_band(case, False, 128), label_band(case, True, 128)
    assert failed.size == (128, LABEL_BAND)
    assert failed.getpixel((MARK_BOX[0] + 1, MARK_BOX[1] + 1)) == FAIL_COLOUR
    assert passed.getpixel((MARK_BOX[0] + 1, MARK_BOX[1] + 1)) == PASS_COLOUR
    mark = failed.crop(MARK_BOX)
    assert int((np.asarray(mark).min(axis=-1) > 200).sum()) > 10  # "FAIL" written on it in white
    # The long prompt stays inside the tile's width: the band's right edge is untouched.
    assert all(failed.getpixel((127, y)) == (245, 245, 245) for y in range(LABEL_BAND))


def test_progress_lines_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scenewright.bench.charts import TOYWORLD_SIZE

    chart = tmp_path / "charts" / "toyworld.png"
    args = ["bench", "toyworld", "--n", "1", "--steps", "1", "--sets", "single,counting",
            "--strategy", "vanilla", "--grid-dir", str(tmp_path / "grid"), "--chart", str(chart)]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert len(lines) == 2  # 1 strategy x 2 sets x 1 case
    assert lines[0].startswith("[1/2] vanilla single #0 seed ")
    assert lines[1].startswith("[2/2] vanilla counting #0 seed ")
    assert all(line.endswith(" s)") and (": passed (" in line or ": failed (" in line) for line in lines)
    assert f"chart: {chart}" in captured.out
    assert Image.open(chart).size == TOYWORLD_SIZE


def test_table_says_how_to_get_a_time_ratio_when_vanilla_did_not_run() -> None:
    from scenewright.bench.toyworld import StrategyRun, markdown_table

    run = StrategyRun(strategy="stitch")
    run.results["position"] = [{"passed": True, "seconds": 0.5}, {"passed": False, "seconds": 0.7}]
    lines = markdown_table([run], ["position"]).splitlines()
    row = lines[2]
    assert lines[-1].startswith("Legend: ") and "divided by vanilla's s/image" in lines[-1]
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
    assert lines[-3] == "| stitch | 1.50x | 1.25x |"  # (2 + 3) / (1 + 3)
    assert lines[-1].startswith("Legend: ") and "divided by vanilla's total" in lines[-1]
    assert time_by_objects([stitch]) == ""


def test_several_seeds_pool_their_cases_and_show_each_seeds_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "toyworld", "--n", "2", "--steps", "1", "--sets", "single", "--seed", "3,5",
            "--json", str(out), "--grid-dir", str(tmp_path / "grid"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = data["results"]["vanilla"]["single"]
    assert data["seed"] == [3, 5]
    assert [(r["case_seed"], r["index"]) for r in rows] == [(3, 0), (3, 1), (5, 0), (5, 1)]
    assert [r["seed"] for r in rows] == [make_case("single", i, seed).seed for seed in (3, 5) for i in (0, 1)]
    assert [r["prompt"] for r in rows] == [
        make_case("single", i, seed).plan.prompt for seed in (3, 5) for i in (0, 1)
    ]
    rates = [sum(r["passed"] for r in rows if r["case_seed"] == seed) / 2 for seed in (3, 5)]
    pooled = sum(r["passed"] for r in rows) / 4
    assert "| strategy | set | seed 3 | seed 5 | all |" in printed
    assert f"| vanilla | single | {rates[0]:.0%} | {rates[1]:.0%} | {pooled:.0%} |" in printed
    assert data["summary"]["vanilla"]["single"] == pooled


def test_seed_spread_is_empty_for_one_seed_and_exact_for_several() -> None:
    from scenewright.bench.toyworld import StrategyRun, seed_spread

    run = StrategyRun("regional")
    run.results["binding"] = [{"case_seed": 0, "passed": p} for p in (True, True, False, False)]
    run.results["binding"] += [{"case_seed": 200, "passed": p} for p in (True, True, True, False)]
    assert seed_spread([run], ["binding"]).splitlines()[-1] == "| regional | binding | 50% | 75% | 62% |"
    run.results["binding"] = run.results["binding"][:4]
    assert seed_spread([run], ["binding"]) == ""


@pytest.mark.parametrize(("given", "fault"), [("0,x", "not a seed"), ("2,2", "twice")])
def test_bad_seed_lists_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], given: str, fault: str
) -> None:
    assert main(["bench", "toyworld", "--seed", given, "--n", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and fault in err and "Traceback" not in err
