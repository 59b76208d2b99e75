"""Bar charts of the benchmarks' results, one module for all of them.

matplotlib is optional (the ``bench`` extra) and imported only when a chart is drawn; figures
are drawn on the Agg canvas directly (no pyplot), so no global backend changes. Each chart has a
fixed size in pixels (``CHART_DPI`` times the figure's inches) so that pages embedding it stay
stable from run to run.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CHART_DPI = 100
TOYWORLD_SIZE = (900, 450)  # pixels
ATTENTION_SIZE = (900, 700)
MISSING = "chart: matplotlib is not installed (pip install 'scenewright[bench]'); skipped"


def have_matplotlib() -> bool:
    """Whether charts can be drawn; says so in one line on stderr when they cannot."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(MISSING, file=sys.stderr)
        return False
    return True


def _figure(size: tuple[int, int]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / CHART_DPI, size[1] / CHART_DPI), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI)
    return buffer.getvalue()


def grouped_bars(
    ax: Any,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    labels: str | None = None,
    missing: str = "n/a",
    reference: float | None = None,
) -> None:
    """One cluster of bars per group, one bar per series; a missing value (None or NaN) is marked
    with the word ``missing`` in red rather than drawn as a zero.

    ``labels`` is a format for the value written above each bar (e.g. ``"{:.0%}"``), or None;
    ``reference`` draws a dashed line at that value (1 for a ratio: no extra cost).
    """
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs, heights, failed = [], [], []
        for j, value in enumerate(values):
            x = j - 0.4 + width * (i + 0.5)
            if value is None or math.isnan(value):
                failed.append(x)
            else:
                xs.append(x)
                heights.append(value)
        bars = ax.bar(xs, heights, width=width, label=name)
        if labels is not None:
            ax.bar_label(bars, labels=[labels.format(h) for h in heights], fontsize=7, padding=1)
        for x in failed:
            ax.text(x, 0, missing, rotation=90, ha="center", va="bottom", fontsize=8, color="red")
    if reference is not None:
        ax.axhline(reference, color="gray", linewidth=0.8, linestyle="--")
    ax.set_ylim(bottom=0)  # bars start at 0, and a missing value's mark sits there in view
    ax.set_xticks(range(len(groups)), list(groups))
    if series:
        ax.legend(fontsize=8)


def toyworld_chart(runs: Sequence[Any], sets: Sequence[str], title: str) -> bytes:
    """Accuracy per set (groups) and strategy (bars) of ``bench toyworld``'s ``StrategyRun`` list."""
    figure = _figure(TOYWORLD_SIZE)
    ax = figure.subplots()
    grouped_bars(ax, sets, {run.strategy: [run.accuracy(s) for s in sets] for run in runs}, "{:.0%}")
    ax.set_ylim(0, 1.12)
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.set_ylabel("cases passed (exact evaluator)")
    ax.set_title(title)
    return _png(figure)


def attention_chart(results: dict[str, Any]) -> bytes:
    """Time and memory of each kernel per region count, against vanilla over the same sequence."""
    figure = _figure(ATTENTION_SIZE)
    axes = figure.subplots(2, 1)
    rows = results["results"]
    kernels = list(results["config"]["kernels"])
    groups = [f"{row['regions']} ({row['text_tokens']} text)" for row in rows]
    panels = (
        ("x_vanilla_same_sequence", "time / vanilla on the same sequence (1 = no extra cost)"),
        ("memory_x_same_sequence", "peak memory / vanilla on the same sequence"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        series = {k: [row[k].get(key) for row in rows] for k in kernels}
        grouped_bars(ax, groups, series, "{:.2f}", reference=1.0)
        ax.set_title(title)
        ax.set_xlabel("regions (text tokens in the joint sequence)")
    config = results["config"]
    figure.suptitle(
        f"bench attention: {config['image_tokens']} image tokens, {results['device_name']} {config['dtype']}"
    )
    return _png(figure)


def models_chart(results: dict[str, Any]) -> bytes:
    """Warm time against the diffusers pipeline and peak memory against vanilla's, per case
    (groups) and model (bars); at the narrow scale, whose seconds and memory are a narrow
    model's, the transformer work against the pipeline's instead."""
    entries = [e for e in results["models"] if not e["error"]]
    cases: list[str] = []
    for entry in entries:
        cases += [c["case"] for c in entry["cases"] if c["case"] not in cases]
    panels: tuple[tuple[str, str], ...] = (
        ("x_pipeline", "warm time / diffusers pipeline's warm time"),
        ("memory_x_vanilla", "peak memory above the weights / vanilla's (warm call)"),
    )
    if results["config"]["scale"] == "narrow":
        panels = (("work_x_pipeline", "transformer work on the published model / the pipeline's"),)
    figure = _figure((int(max(700, 110 * len(cases) + 200)), 375 * len(panels) + 50 * (len(panels) == 1)))
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (key, title) in zip(axes, panels, strict=True):
        series: dict[str, list[float | None]] = {}
        for entry in entries:
            by_case = {c["case"]: c for c in entry["cases"]}
            series[entry["model"]] = [by_case.get(case, {}).get(key) for case in cases]
        grouped_bars(ax, cases, series, missing="failed", reference=1.0)
        ax.set_title(title)
    config = results["config"]
    figure.suptitle(
        f"bench models: {config['scale']} scale, {config['size']} px, {config['steps']} steps, "
        f"{config['device']} {config['dtype']}"
    )
    return _png(figure)


def write_png(path: Path, png: bytes) -> Path:
    """Write a chart, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
