"""The CLI: a real run on the tiny model, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.cli import main
from scenewright.tools.output import read_png_metadata

FAST = ["--steps", "2", "--quiet", "--strategy", "vanilla", "--refine-rounds", "0"]


def test_generate_writes_image_plan_and_reproducible_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        main(["generate", "two red circles left of a blue square", "--out", str(out), "--seed", "5", *FAST])
        == 0
    )
    image = Image.open(out / "image.png")
    assert image.size == (64, 64) and image.mode == "RGB"
    plan = json.loads((out / "plan.json").read_text())
    assert plan["prompt"] == "two red circles left of a blue square"
    meta = read_png_metadata(out / "image.png")
    assert meta["settings"]["seed"] == 5 and meta["settings"]["steps"] == 2
    assert meta["backend"]["name"] == "tiny" and meta["strategy"] == "vanilla"
    assert meta["plan"] == plan and meta["version"]
    assert "image:" in capsys.readouterr().out

    # The metadata reproduces the image exactly.
    again = tmp_path / "again"
    s = meta["settings"]
    args = ["generate", meta["plan"]["prompt"], "--out", str(again), "--seed", str(s["seed"]),
            "--steps", str(s["steps"]), "--guidance", str(s["guidance"]), "--quiet",
            "--strategy", meta["strategy"], "--refine-rounds", "0"]  # fmt: skip
    assert main(args) == 0
    assert Image.open(again / "image.png").tobytes() == image.tobytes()


def test_generate_never_overwrites_without_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "image.png").write_bytes(b"precious")
    code = main(["generate", "a red circle", "--out", str(tmp_path), *FAST])
    assert code == 2
    assert (tmp_path / "image.png").read_bytes() == b"precious"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert main(["generate", "a red circle", "--out", str(tmp_path), "--overwrite", *FAST]) == 0
    assert Image.open(tmp_path / "image.png").size == (64, 64)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "   "], "prompt: is empty"),
        (["generate", "a cat", "--steps", "-3"], "steps: -3"),
        (["generate", "a cat", "--steps", "0"], "steps: 0"),
        (["generate", "a cat", "--height", "65"], "height: 65"),
        (["generate", "a cat", "--backend", "flux-dev", "--width", "1000"], "width: 1000"),
        (["generate", "a cat", "--backend", "nope"], "unknown backend 'nope'"),
        (["generate", "a cat", "--backend", "./missing/folder"], "does not exist"),
        (["generate", "a cat", "--backend", "flux-dev"], "not in the local Hugging Face cache"),
        (["generate", "a cat", "--backend", "some-org/some-model"], "not in the local Hugging Face cache"),
        (["generate", "a cat", "--guidance", "-1"], "guidance: -1"),
        (["generate", "a cat", "--dtype", "int8"], "dtype: unknown dtype"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*args, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert code == 2
    assert len(errors) == 1 and needle in errors[0], err
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o" / "image.png").exists()


def test_generate_on_local_flux_and_sd3_folders(tmp_path: Path) -> None:
    """A local checkpoint folder is detected by its model_index.json and runs end to end."""
    for name, pipe in (("flux", tiny_flux_pipeline()), ("sd3", tiny_sd3_pipeline())):
        folder = tmp_path / name
        pipe.save_pretrained(folder)
        out = tmp_path / f"out-{name}"
        args = ["generate", "a red apple", "--backend", str(folder), "--height", "32", "--width", "48",
                "--out", str(out), *FAST]  # fmt: skip
        assert main(args) == 0
        assert Image.open(out / "image.png").size == (48, 32)
        assert read_png_metadata(out / "image.png")["backend"]["family"] == name


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "generate" in capsys.readouterr().err
