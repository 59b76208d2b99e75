"""``--cpu-offload``: model or sequential offload on a GPU, a one-line error where it cannot help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from scenewright.backends.offload import offload_mode, place_pipeline
from scenewright.cli import main
from scenewright.errors import InvalidInputError


def test_offload_modes_are_parsed_and_checked_against_the_device() -> None:
    gpu = torch.device("cuda")
    assert offload_mode(None, gpu) is None and offload_mode(False, gpu) is None
    assert offload_mode(True, gpu) == "model" and offload_mode("sequential", gpu) == "sequential"
    with pytest.raises(InvalidInputError, match="cpu-offload: unknown mode 'layers'"):
        offload_mode("layers", gpu)
    with pytest.raises(InvalidInputError, match="already on the CPU"):
        offload_mode("model", torch.device("cpu"))


def test_each_mode_installs_the_matching_diffusers_offload() -> None:
    calls: list[tuple[str, Any]] = []

    class Pipe:
        def enable_model_cpu_offload(self, device: Any) -> None:
            calls.append(("model", device))

        def enable_sequential_cpu_offload(self, device: Any) -> None:
            calls.append(("sequential", device))

        def to(self, device: Any) -> None:
            calls.append(("to", device))

    gpu = torch.device("cuda", 1)
    for mode in ("model", "sequential", None):
        place_pipeline(Pipe(), gpu, mode)
    assert calls == [("model", gpu), ("sequential", gpu), ("to", gpu)]


def test_generate_with_offload_on_a_cpu_is_one_line_before_any_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["generate", "a red circle", "--out", str(out), "--device", "cpu", "--cpu-offload", "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: cpu-offload:") and "--device cuda" in err
    assert not (out / "image.png").exists()
