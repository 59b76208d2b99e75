"""Bounds refused before any work: one line, exit code 2, the field and the fix; nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenewright.cli import main


def _generate(tmp_path: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["generate", "a red circle", "--out", out if out is not None else str(tmp_path / "o"), "--quiet",
            "--strategy", "vanilla", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        (["--steps", "100000"], "steps:", "--steps 20 to 50"),
        (["--guidance", "nan"], "guidance:", "--guidance 0 or more"),
        (["--guidance", "inf"], "guidance:", "--guidance 0 or more"),
        (["--seed", str(2**64)], "seed:", "2**63"),
        (["--seed", "-1"], "seed:", "2**63"),
        (["--height", "100000"], "height:", "--height 256 or less"),
        (["--width", "1024"], "width:", "--width 256 or less"),  # the 64 px model at 1024: refused
        (["--device", "tpu"], "device:", "--device cpu"),
        (["--device", "cuda"], "device:", "--device cpu"),  # CPU-only torch here (CI has no GPU)
    ],
)
def test_generate_refuses_out_of_range_values_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], field: str, fix: str
) -> None:
    import torch

    if extra[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(_generate(tmp_path, *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {field}") and fix in err
    assert not (tmp_path / "o").exists()


def test_generate_refuses_output_folders_it_cannot_write_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    for out, problem in [
        ("", "out: is empty"),
        (str(a_file), "is a file"),
        (str(a_file / "under"), "is a file, so"),
        ("/proc/scenewright-out", "cannot write in /proc"),
    ]:
        code = main(_generate(tmp_path, out=out))
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and problem in err, (out, err)
    assert a_file.read_text() == "x"
