"""``eval geneval``, ``eval geneval-score`` and ``batch`` on the tiny model: GenEval's folder
layout, resuming, refusing a folder written with other settings, a failing prompt recorded,
GenEval's scoring rules on synthetic detections with known answers, and the per-tag table."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenewright.bench.geneval.metadata import read_metadata
from scenewright.bench.geneval.score import images, judge, table, tag_scores
from scenewright.cli import main
from scenewright.errors import InvalidInputError
from scenewright.tools.detection.instances import Instance

ENTRIES = [
    {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"},
    {"tag": "counting", "include": [{"class": "square", "count": 2}],
     "exclude": [{"class": "square", "count": 3}], "prompt": "a photo of two squares"},
    {"tag": "position", "include": [{"class": "square", "count": 1},
                                    {"class": "circle", "count": 1, "position": ["left of", 0]}],
     "prompt": "a photo of a circle left of a square"},
]  # fmt: skip
FAST = ["--steps", "1", "--strategy", "vanilla", "--quiet"]


def write_metadata(path: Path, entries: list[dict] = ENTRIES) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------- metadata
def test_metadata_is_read_and_bad_lines_are_one_line_errors(tmp_path: Path) -> None:
    assert read_metadata(write_metadata(tmp_path / "m.jsonl")) == ENTRIES
    bad = {
        "not valid JSON": "{oops",
        "no include clauses": json.dumps({"tag": "x", "prompt": "a cat", "include": []}),
        "not one of GenEval's colours": json.dumps(
            {"tag": "colors", "prompt": "a cat", "include": [{"class": "cat", "count": 1, "color": "teal"}]}
        ),
        "an earlier clause's index": json.dumps(
            {
                "tag": "position",
                "prompt": "a",
                "include": [{"class": "cat", "count": 1, "position": ["left of", 0]}],
            }
        ),
        "count is not a whole number in 1..12": json.dumps(
            {"tag": "x", "prompt": "a", "include": [{"class": "cat", "count": 0}]}
        ),
    }
    for problem, line in bad.items():
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(ENTRIES[0]) + "\n" + line + "\n")
        with pytest.raises(InvalidInputError, match=f"^metadata: .*line 2: .*{problem}") as caught:
            read_metadata(path)
        assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------- rules
def box(x: float, y: float, score: float = 0.9) -> Instance:
    return Instance((x, y, x + 10, y + 10), score)


def no_colors(image: Image.Image, found: Sequence[Instance], name: str) -> list[str]:
    raise AssertionError("no colour clause here")


def test_geneval_rules_on_synthetic_detections() -> None:
    image = Image.new("RGB", (100, 100))
    single, counting, position = ENTRIES
    assert judge(single, {"circle": [box(0, 0)]}, no_colors, image)[0]
    assert not judge(single, {}, no_colors, image)[0]
    assert judge(counting, {"square": [box(0, 0), box(50, 0)]}, no_colors, image)[0]
    too_many, reasons = judge(counting, {"square": [box(0, 0), box(30, 0), box(60, 0)]}, no_colors, image)
    assert not too_many and reasons == ["expected square<3, found 3"]
    assert judge(position, {"square": [box(80, 40)], "circle": [box(0, 40)]}, no_colors, image)[0]
    wrong, reasons = judge(position, {"square": [box(0, 40)], "circle": [box(80, 40)]}, no_colors, image)
    assert not wrong and reasons == ["expected circle left of target, found right of target"]
    # Colour: only the most confident ``count`` instances are classified.
    colors = {
        "tag": "colors",
        "include": [{"class": "car", "count": 1, "color": "red"}],
        "prompt": "a red car",
    }
    asked: list[int] = []

    def red_then_blue(image: Image.Image, found: Sequence[Instance], name: str) -> list[str]:
        asked.append(len(found))
        return ["red", "blue"][: len(found)]

    assert judge(colors, {"car": [box(0, 0), box(50, 50)]}, red_then_blue, image)[0] and asked == [1]
    two = {**colors, "include": [{"class": "car", "count": 2, "color": "red"}]}
    assert judge(two, {"car": [box(0, 0), box(50, 50)]}, red_then_blue, image) == (
        False,
        ["expected red car>=2, found 1 red; and 1 red, 1 blue"],
    )


def test_tag_scores_and_the_table_beside_flux() -> None:
    from scenewright.bench.geneval.score import Scored

    rows = [Scored("a", "counting", "p", True, "", {}), Scored("b", "counting", "p", False, "", {}),
            Scored("c", "single_object", "p", True, "", {})]  # fmt: skip
    scores = tag_scores(rows)
    assert scores == {"single_object": 1.0, "counting": 0.5, "overall": 0.75}
    text = table(scores)
    assert "| this run | 1.00 | - | 0.50 | - | - | - | 0.75 |" in text
    assert "| FLUX.1-dev (published) | 0.98 | 0.81 | 0.74 | 0.79 | 0.22 | 0.45 | 0.66 |" in text


# ------------------------------------------------------------------------------ rendering
def test_geneval_layout_resume_and_refusal(tmp_path: Path, capsys) -> None:
    meta = write_metadata(tmp_path / "evaluation_metadata.jsonl")
    out = tmp_path / "run"
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "2", *FAST]) == 0
    for index, entry in enumerate(ENTRIES):
        folder = out / f"{index:05d}"
        with (folder / "metadata.jsonl").open() as handle:
            assert json.load(handle) == entry  # exactly what GenEval's reader does
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["00000.png", "00001.png"]
        with Image.open(folder / "samples" / "00000.png") as image:
            assert image.size == (64, 64)
    # Each sample's verdict and overlay beside GenEval's layout; the summary lists them all.
    verdict = json.loads((out / "00000" / "verdicts" / "00000.json").read_text())
    assert verdict["verdict"] in ("matches the plan", "differs from the plan") and verdict["seed"] == 0
    assert (out / "00000" / "overlays" / "00000.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["images"]) == 6 and {"differs", "cannot_verify", "blank", "failed"} <= set(summary)
    first_path, first_metadata = images(out)[0]
    assert first_path == out / "00000" / "samples" / "00000.png" and first_metadata == ENTRIES[0]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    capsys.readouterr()
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "2", *FAST]) == 0
    assert "0 images rendered, 6 already there" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps
    code = main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "2", *FAST[:-3], "--steps", "2",
                 "--strategy", "vanilla", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: out: ") and "steps: 1, now 2" in err and "\n" not in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps


def test_a_failing_prompt_is_recorded_and_the_run_goes_on(tmp_path: Path, monkeypatch, capsys) -> None:
    from scenewright.bench.rendering import Renderer

    real = Renderer.render

    def flaky(self, plan, seed):  # type: ignore[no-untyped-def]
        if "two" in plan.prompt:
            raise RuntimeError("the model fell over")
        return real(self, plan, seed)

    monkeypatch.setattr(Renderer, "render", flaky)
    meta = write_metadata(tmp_path / "m.jsonl")
    out = tmp_path / "run"
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "1", *FAST]) == 1
    error = json.loads((out / "00001" / "error.json").read_text())
    assert error["error"] == "RuntimeError: the model fell over" and error["prompt"] == ENTRIES[1]["prompt"]
    assert (out / "00000" / "samples" / "00000.png").is_file() and (
        out / "00002" / "samples" / "00000.png"
    ).is_file()
    assert "1 prompts failed" in capsys.readouterr().err
    monkeypatch.setattr(Renderer, "render", real)  # fixed: a rerun renders only what is missing
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "1", *FAST]) == 0
    assert (out / "00001" / "samples" / "00000.png").is_file() and not (out / "00001" / "error.json").exists()


def test_geneval_score_with_a_tiny_detector_folder(tmp_path: Path, capsys) -> None:
    import detection_builders as builders

    meta = write_metadata(tmp_path / "m.jsonl")
    out = tmp_path / "run"
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "1", *FAST]) == 0
    model, image_processor, tokenizer = builders.owlv2()
    detector = tmp_path / "owl"
    for part in (model, image_processor, tokenizer):
        part.save_pretrained(detector)
    capsys.readouterr()
    assert main(["eval", "geneval-score", str(out), "--detector", str(detector), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| this run (3 images) |" in printed and "| FLUX.1-dev (published) |" in printed
    results = [json.loads(line) for line in (out / "results-owlv2.jsonl").read_text().splitlines()]
    assert [r["tag"] for r in results] == ["single_object", "counting", "position"]
    assert all(isinstance(r["correct"], bool) for r in results)
    # The columns GenEval's evaluator writes; its summary_scores.py groups a prompt's images by
    # the metadata text, reads tag and correct.
    assert all(
        set(r) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"} for r in results
    )
    assert [json.loads(r["metadata"]) for r in results] == ENTRIES


def test_geneval_score_with_the_exact_evaluator_offline(tmp_path: Path, capsys) -> None:
    """``--detector exact``: the embedded models' own judge scores a folder, no download."""
    from scenewright.toyworld.scene import Scene, SceneObject

    meta = write_metadata(tmp_path / "m.jsonl")
    out = tmp_path / "run"
    assert main(["eval", "geneval", str(meta), "--out", str(out), "--n-samples", "1", *FAST]) == 0
    scenes = [
        [SceneObject("circle", "red", (20, 20, 44, 44))],  # single_object: right
        [SceneObject("square", "blue", (4, 4, 24, 24))],  # counting: one square of two
        [SceneObject("square", "green", (4, 20, 24, 40)), SceneObject("circle", "red", (40, 20, 60, 40))],
    ]  # the position prompt wants the circle left of the square: wrong
    for index, objects in enumerate(scenes):
        Image.fromarray(Scene(objects).render()).save(out / f"{index:05d}" / "samples" / "00000.png")
    capsys.readouterr()
    assert main(["eval", "geneval-score", str(out), "--detector", "exact", "--quiet"]) == 0
    assert "| this run (3 images) | 1.00 | - | 0.00 | - | 0.00 |" in capsys.readouterr().out
    results = [json.loads(line) for line in (out / "results-exact.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in results] == [True, False, False]
    assert results[1]["reason"] == "expected square>=2, found 1"
    assert results[2]["reason"] == "expected circle left of target, found right of target"


def test_render_and_score_refuses_a_bad_detector_before_rendering(tmp_path: Path, capsys) -> None:
    meta = write_metadata(tmp_path / "m.jsonl")
    out = tmp_path / "run"
    code = main(
        ["eval", "geneval", str(meta), "--out", str(out), *FAST, "--score", "--detector", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 2 and err.startswith("error: detector: ") and "has no config.json" in err and "\n" not in err
    )
    assert not out.exists()


def test_score_needs_a_detector_and_samples(tmp_path: Path, capsys) -> None:
    assert main(["eval", "geneval-score", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: detector: ")
    assert (
        main(["eval", "geneval-score", str(tmp_path), "--detector", "google/owlv2-base-patch16-ensemble"])
        == 2
    )
    assert "holds no GenEval samples" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- batch
def test_batch_renders_one_folder_per_prompt_with_a_summary(tmp_path: Path, capsys) -> None:
    from scenewright.bench.batch import read_prompts

    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "a red circle\n\n# a comment\na blue square left of a green triangle\na cat on a sofa\n"
    )
    out = tmp_path / "batch"
    capsys.readouterr()
    assert main(["batch", str(prompts), "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert files(out) >= {
        "00000/image.png",
        "00000/plan.json",
        "00000/overlay.png",
        "00000/verdict.json",
        "00001/image.png",
        "00001/plan.json",
        "summary.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == 3 and summary["rendered"] == [0, 1, 2] and summary["failed"] == []
    # Every image's verdict, by the judge generate uses; a cat the embedded model never learned
    # cannot be verified, and is listed so, in summary.json and at the end of the run.
    verdicts = [json.loads((out / f"{i:05d}" / "verdict.json").read_text()) for i in range(3)]
    assert [v["verdict"] for v in summary["images"]] == [v["verdict"] for v in verdicts]
    cat = verdicts[2]
    assert cat["objects"] == "cat not checked, sofa not checked"
    assert cat["lines"][0].startswith("[0] cat: not checked: 'cat' is not a shape")
    # never "matches": "cannot verify", or "differs" when the image came out blank
    assert cat["verdict"] == ("differs from the plan" if cat["blank"] else "cannot verify")
    listed_as = "blank" if cat["blank"] else "cannot_verify"
    assert 2 in [i["index"] for i in summary[listed_as]]
    assert {i["index"] for i in summary["differs"]} == {
        i for i, v in enumerate(verdicts) if v["verdict"] == "differs from the plan"
    }
    assert f"{listed_as}: 00002 seed 0: a cat on a sofa [cat not checked, sofa not checked]" in err
    assert re.search(r"verdicts: \d/3 images match the plan, \d differ, \d cannot be verified, \d blank", err)
    assert (
        json.loads((out / "00001" / "plan.json").read_text())["prompt"]
        == "a blue square left of a green triangle"
    )
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a red circle"}\n{"text": "no prompt"}\n')
    with pytest.raises(InvalidInputError, match=r'^prompts: .*line 2: no "prompt" text'):
        read_prompts(jsonl)


def test_batch_takes_generates_render_options(tmp_path: Path) -> None:
    """--n-images, --negative-prompt and --refine-rounds as generate has them: one folder a seed,
    each with its verdict, and the settings in the folder's record."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("two red circles\n")
    out = tmp_path / "batch"
    argv = ["batch", str(prompts), "--out", str(out), "--n-images", "2", "--negative-prompt", "blue",
            "--refine-rounds", "1", "--steps", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert {"00000/seed-0/verdict.json", "00000/seed-1/image.png", "00000/seed-1/verdict.json"} <= files(out)
    record = json.loads((out / "scenewright-run.json").read_text())
    assert record["negative_prompt"] == "blue" and record["seeds"] == [0, 1] and record["refine_rounds"] == 1
    with Image.open(out / "00000" / "seed-1" / "image.png") as image:
        assert "blue" in json.dumps(json.loads(image.info["scenewright"]).get("settings", {}))
    summary = json.loads((out / "summary.json").read_text())
    assert [(i["index"], i["seed"]) for i in summary["images"]] == [(0, 0), (0, 1)]


def test_the_end_of_a_run_lists_failures_and_blank_images() -> None:
    from scenewright.bench.verdicts import failures_of, report_lines

    images = [
        {"index": 0, "seed": 0, "prompt": "a red circle", "verdict": "matches the plan", "objects": "circle 1/1", "blank": False},
        {"index": 1, "seed": 0, "prompt": "two stars", "verdict": "differs from the plan", "objects": "star 0/2", "blank": True},
    ]  # fmt: skip
    lists = failures_of(images)
    assert [i["index"] for i in lists["differs"]] == [1] and [i["index"] for i in lists["blank"]] == [1]
    assert report_lines(images) == [
        "verdicts: 1/2 images match the plan, 1 differ, 0 cannot be verified, 1 blank",
        "differs: 00001 seed 0: two stars [star 0/2]",
        "blank: 00001 seed 0: two stars [star 0/2]",
    ]


def test_two_processes_write_exactly_the_files_of_one(tmp_path: Path) -> None:
    """Two local ranks (gloo, through accelerate's PartialState), about 20 s on two cores."""
    meta = write_metadata(tmp_path / "m.jsonl")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["eval", "geneval", str(meta), "--out", str(one), "--n-samples", "1", *FAST]) == 0
    assert main(["eval", "geneval", str(meta), "--out", str(two), "--n-samples", "1", "--num-processes", "2",
                 *FAST, "--device", "cpu"]) == 0  # fmt: skip
    per_prompt = {name for name in files(one) if name[0].isdigit()}
    assert per_prompt == {name for name in files(two) if name[0].isdigit()} and len(per_prompt) == 4 * len(
        ENTRIES
    )
    merged = json.loads((two / "summary.json").read_text())
    assert merged["images"] == json.loads((one / "summary.json").read_text())["images"]
    for name in files(one):
        if name.endswith(".png"):
            a, b = Image.open(one / name), Image.open(two / name)
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_batch_over_two_processes_writes_the_images_of_one(tmp_path: Path) -> None:
    """``batch --num-processes 2``: the same per-prompt files as one process, one merged summary."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "a red circle"}\n{"prompt": "two blue squares"}\n{"prompt": "a green triangle"}\n'
    )
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["batch", str(prompts), "--out", str(one), *FAST]) == 0
    assert (
        main(["batch", str(prompts), "--out", str(two), "--num-processes", "2", *FAST, "--device", "cpu"])
        == 0
    )
    per_prompt = {name for name in files(one) if name[0].isdigit()}
    assert per_prompt == {name for name in files(two) if name[0].isdigit()}
    assert {
        f"{i:05d}/{name}" for i in range(3) for name in ("image.png", "plan.json", "verdict.json")
    } <= per_prompt
    for name in per_prompt:
        if name.endswith(".png"):
            assert np.array_equal(np.asarray(Image.open(one / name)), np.asarray(Image.open(two / name)))
    merged = json.loads((two / "summary.json").read_text())
    assert merged["images"] == json.loads((one / "summary.json").read_text())["images"]
    assert merged["rendered"] == [0, 1, 2] and merged["failed"] == [] and len(merged["seconds_per_rank"]) == 2
    assert {"summary-rank-0.json", "summary-rank-1.json"} <= files(two)
