"""The benchmarks' chart module: sizes, what a missing value looks like, and no matplotlib."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from scenewright.bench import charts
from scenewright.bench.toyworld import StrategyRun


def test_toyworld_chart_has_its_fixed_size_and_a_bar_per_strategy_and_set() -> None:
    runs = []
    for strategy, passed in (("vanilla", [True, False]), ("stitch", [True, True])):
        run = StrategyRun(strategy)
        for set_name in ("counting", "position"):
            run.results[set_name] = [{"passed": p, "seconds": 0.1} for p in passed]
        runs.append(run)
    png = charts.toyworld_chart(runs, ["counting", "position"], "test")
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[1::-1] == charts.TOYWORLD_SIZE
    # matplotlib's first two colours, one series a strategy: stitch's bars (100%) twice vanilla's (50%).
    vanilla = int((image == (31, 119, 180)).all(axis=-1).sum())
    stitch = int((image == (255, 127, 14)).all(axis=-1).sum())
    assert 1.7 < stitch / vanilla < 2.1


def test_attention_chart_marks_a_missing_ratio_instead_of_a_zero_bar() -> None:
    row = {
        "regions": 1,
        "text_tokens": 8,
        "dense": {"x_vanilla_same_sequence": 1.2, "memory_x_same_sequence": None},
    }
    results = {
        "config": {"kernels": ["dense"], "image_tokens": 16, "dtype": "float32"},
        "device_name": "cpu",
        "results": [row],
    }
    image = np.asarray(Image.open(io.BytesIO(charts.attention_chart(results))).convert("RGB"))
    assert image.shape[1::-1] == charts.ATTENTION_SIZE
    top, bottom = image[:350], image[350:]

    def blue(part: np.ndarray) -> int:  # pixels of the first series' colour
        return int((part == (31, 119, 180)).all(axis=-1).sum())

    assert blue(top) > 5000  # the time ratio is drawn as a bar
    assert blue(bottom) < 500  # the memory ratio is not (only the legend's patch): it is marked n/a
    red = (bottom[..., 0] > 200) & (bottom[..., 1] < 60) & (bottom[..., 2] < 60)
    assert red.sum() > 20  # in red


def test_without_matplotlib_a_chart_is_one_line_and_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert charts.have_matplotlib() is False
    assert capsys.readouterr().err == charts.MISSING + "\n"
