"""``bench attention`` on a tiny block stack: progress on stderr, a legend under the table, a chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from scenewright.cli import main

TINY = ["bench", "attention", "--image-tokens", "16", "--text-tokens", "4", "--regions", "1,2", "--heads", "1",
        "--head-dim", "16", "--double-blocks", "1", "--single-blocks", "1", "--kernels", "dense,segments",
        "--repeats", "1"]  # fmt: skip


def test_progress_legend_json_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scenewright.bench.charts import ATTENTION_SIZE

    chart, out = tmp_path / "charts" / "attention.png", tmp_path / "attention.json"
    assert main([*TINY, "--chart", str(chart), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert progress == [
        "[1/2] 1 region, 8 text tokens: 2 vanillas and dense, segments, 1 timed repeat each",
        "[2/2] 2 regions, 12 text tokens: 2 vanillas and dense, segments, 1 timed repeat each",
    ]
    table = captured.out.splitlines()
    assert table[0].split() == ["regions", "text", "|", "base", "ms", "same", "ms", "|", "dense", "ms", "x", "same",
                                "x", "base", "mem", "x", "|", "segments", "ms", "x", "same", "x", "base", "mem", "x"]  # fmt: skip
    assert [line.split()[:2] for line in table[1:3]] == [["1", "8"], ["2", "12"]]
    assert (
        table[4].startswith("Legend: regions: region prompts;")
        and "x same: its time divided by same ms" in table[4]
    )
    data = json.loads(out.read_text())
    assert data["legend"] == table[4]
    assert [row["regions"] for row in data["results"]] == [1, 2]
    assert Image.open(chart).size == ATTENTION_SIZE


def test_quiet_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--regions", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Legend: " in captured.out


def test_a_folder_as_chart_is_refused_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*TINY, "--chart", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a folder" in err and len(err.strip().splitlines()) == 1
