"""``eval geneval``, ``eval geneval-score`` and ``batch`` on the tiny model: GenEval's folder
layout, resuming, refusing a folder written with other settings, a failing prompt recorded,
GenEval's scoring rules on synthetic detections with known answers, and the per-tag table."""

from __future__ import annotations

import json
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
    prompts.write_text("a red circle\n\n# a comment\na blue square left of a green triangle\n")
    out = tmp_path / "batch"
    assert main(["batch", str(prompts), "--out", str(out), *FAST]) == 0
    assert files(out) >= {
        "00000/image.png",
        "00000/plan.json",
        "00001/image.png",
        "00001/plan.json",
        "summary.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == 2 and summary["rendered"] == [0, 1] and summary["failed"] == []
    assert (
        json.loads((out / "00001" / "plan.json").read_text())["prompt"]
        == "a blue square left of a green triangle"
    )
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a red circle"}\n{"text": "no prompt"}\n')
    with pytest.raises(InvalidInputError, match=r'^prompts: .*line 2: no "prompt" text'):
        read_prompts(jsonl)


def test_two_processes_write_exactly_the_files_of_one(tmp_path: Path) -> None:
    """Two local ranks (gloo, through accelerate's PartialState), about 20 s on two cores."""
    meta = write_metadata(tmp_path / "m.jsonl")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["eval", "geneval", str(meta), "--out", str(one), "--n-samples", "1", *FAST]) == 0
    assert main(["eval", "geneval", str(meta), "--out", str(two), "--n-samples", "1", "--num-processes", "2",
                 *FAST, "--device", "cpu"]) == 0  # fmt: skip
    assert files(one) == files(two) and len(files(one)) == 1 + 2 * len(ENTRIES)
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
    assert per_prompt == {name for name in files(two) if name[0].isdigit()} and len(per_prompt) == 6
    for name in per_prompt:
        if name.endswith(".png"):
            assert np.array_equal(np.asarray(Image.open(one / name)), np.asarray(Image.open(two / name)))
    merged = json.loads((two / "summary.json").read_text())
    assert merged["rendered"] == [0, 1, 2] and merged["failed"] == [] and len(merged["seconds_per_rank"]) == 2
    assert {"summary-rank-0.json", "summary-rank-1.json"} <= files(two)
