"""``scenewright bench toyworld``: every strategy on toy-world prompt sets, judged exactly.

Prints a markdown table (accuracy per set, seconds per image, time relative to vanilla) with a
legend under it, one progress line per case on stderr, writes the per-case results as JSON, saves
a grid of example images per strategy (each tile labelled with its prompt, set and pass or fail)
and, with ``--chart``, a bar chart of accuracy per strategy and set.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from scenewright.bench.cases import SETS, BenchCase, make_cases
from scenewright.bench.progress import Progress
from scenewright.errors import InvalidInputError
from scenewright.terminal import silence_library_bars

if TYPE_CHECKING:
    from scenewright.executor.sampler import SamplingSettings

GRID_EXAMPLES = 8
PASS_COLOUR = (40, 200, 80)
FAIL_COLOUR = (220, 50, 50)
LABEL_BAND = 40  # pixels under each grid tile: pass/fail mark, set and seed, then the prompt
MARK_BOX = (3, 3, 35, 15)  # the pass/fail mark within its band
TABLE_LEGEND = (
    "Legend: one column per prompt set, the share of its cases that the exact toy-world evaluator "
    "passes (single: right colour and shape, in brackets right colour only; two, binding: every "
    "object drawn in its colour and shape; counting: every count exact; position: every object in "
    "its box and every relation holding; complex: that and every count exact); s/image: mean wall "
    "seconds of one render, the untimed warm-up excluded; time vs vanilla: s/image divided by "
    "vanilla's s/image on the same cases (1.00x = vanilla's cost)."
)
BY_OBJECTS_LEGEND = (
    "Legend: a strategy's total seconds over the cases with that many distinct objects, divided "
    "by vanilla's total over the same cases."
)


def judge(case: BenchCase, image: Image.Image) -> dict[str, Any]:
    """The pass/fail rule of ``case.set`` plus the details behind it."""
    from scenewright.tools.evaluator import object_kind, score_plan  # scipy: not for --help

    score = score_plan(image, case.plan)
    result: dict[str, Any] = {
        "found": [o.found for o in score.objects],
        "in_boxes": [o.in_boxes for o in score.objects],
        "relations": score.relations,
        "detections": [(d.color, d.shape, list(d.box)) for d in score.detections],
    }
    if case.set == "single":
        color, shape = object_kind(case.plan.objects[0])
        result["color_ok"] = any(d.color == color for d in score.detections)
        result["shape_ok"] = any(d.color == color and d.shape == shape for d in score.detections)
        result["passed"] = result["shape_ok"]
    elif case.set in ("two", "binding"):
        result["passed"] = score.all_present
    elif case.set == "counting":
        result["passed"] = score.counts_exact
    elif case.set == "position":
        result["passed"] = score.position_ok
    else:
        result["passed"] = score.position_ok and score.counts_exact
    return result


@dataclass
class StrategyRun:
    strategy: str
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Up to GRID_EXAMPLES (case, image, passed) per set, for the labelled grid.
    examples: dict[str, list[tuple[BenchCase, Image.Image, bool]]] = field(default_factory=dict)

    def accuracy(self, set_name: str, where: str = "passed") -> float:
        rows = self.results.get(set_name, [])
        return sum(bool(r[where]) for r in rows) / len(rows) if rows else float("nan")

    def seconds_per_image(self) -> float:
        times = [r["seconds"] for rows in self.results.values() for r in rows]
        return sum(times) / len(times) if times else float("nan")


def run_benchmark(
    backend: Any,
    strategies: list[str],
    sets: list[str],
    n: int,
    seed: int | Sequence[int],
    settings_for: Any,
    progress: bool = True,
) -> list[StrategyRun]:
    """Every strategy on ``n`` cases per set and per seed (several seeds pool their cases)."""
    from scenewright.executor.strategies import run_strategy

    seeds = [seed] if isinstance(seed, int) else list(seed)
    # Each case with the seed of the set it was drawn from (its own sampling seed is derived).
    cases = {s: [(one, case) for one in seeds for case in make_cases(s, n, one)] for s in sets}
    meter = Progress(len(strategies) * sum(len(c) for c in cases.values()), quiet=not progress)
    runs = {strategy: StrategyRun(strategy) for strategy in strategies}
    first = [case for _, case in next(iter(cases.values()))[:1]]
    for strategy in strategies:
        # One untimed run first: a strategy's first call pays one-off costs (kernel compilation,
        # lazy imports) that would otherwise be charged to whichever case comes first.
        for case in first:
            run_strategy(strategy, backend, case.plan, settings_for(case))
    for set_name, set_cases in cases.items():
        for run in runs.values():
            run.results[set_name] = []
            run.examples[set_name] = []
        # Strategies take turns case by case, so a change in the machine's load falls on all of
        # them alike and the time ratios stay fair.
        for case_seed, case in set_cases:
            for strategy, run in runs.items():
                settings = settings_for(case)
                started = time.perf_counter()
                rendered = run_strategy(strategy, backend, case.plan, settings)
                seconds = time.perf_counter() - started
                row = judge(case, rendered.image)
                row.update(
                    {
                        "index": case.index,
                        "case_seed": case_seed,
                        "prompt": case.plan.prompt,
                        "seed": settings.seed,
                        "seconds": seconds,
                        "objects": len(case.plan.objects),
                    }
                )
                base = rendered.artifacts.get("base_image")
                if isinstance(base, Image.Image):  # refine: was the image it started from better?
                    mask = np.asarray(rendered.artifacts["refine_mask"], dtype=bool)
                    outside = (
                        np.asarray(base.convert("RGB"))[~mask]
                        != np.asarray(rendered.image.convert("RGB"))[~mask]
                    )
                    row["base_passed"] = judge(case, base)["passed"]
                    row["changed_outside_mask"] = int(outside.any(axis=-1).sum())
                run.results[set_name].append(row)
                verdict = "passed" if row["passed"] else "failed"
                meter.step(
                    f"{strategy} {set_name} #{case.index} seed {settings.seed}: {verdict} ({seconds:.2f} s)"
                )
                if len(run.examples[set_name]) < GRID_EXAMPLES:
                    run.examples[set_name].append((case, rendered.image, bool(row["passed"])))
    return list(runs.values())


def refine_summary(run: StrategyRun) -> dict[str, int] | None:
    """For a refine run: cases it made worse or better than its base image, pixels it changed outside its mask."""
    rows = [r for set_rows in run.results.values() for r in set_rows if "base_passed" in r]
    if not rows:
        return None
    return {
        "cases": len(rows),
        "worse": sum(r["base_passed"] and not r["passed"] for r in rows),
        "better": sum(r["passed"] and not r["base_passed"] for r in rows),
        "changed_outside_mask": sum(r["changed_outside_mask"] for r in rows),
    }


def markdown_table(runs: list[StrategyRun], sets: list[str]) -> str:
    vanilla = next((r for r in runs if r.strategy == "vanilla"), None)
    header = ["strategy", *sets, "s/image", "time vs vanilla"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = [run.strategy]
        for s in sets:
            cell = f"{run.accuracy(s):.0%}"
            if s == "single":
                cell += f" (colour {run.accuracy(s, 'color_ok'):.0%})"
            cells.append(cell)
        cells.append(f"{run.seconds_per_image():.2f}")
        if vanilla is None:
            cells.append("n/a (add vanilla to --strategy)")
        else:
            cells.append(f"{run.seconds_per_image() / vanilla.seconds_per_image():.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\n" + TABLE_LEGEND)
    for run in runs:
        summary = refine_summary(run)
        if summary:
            lines.append(
                f"\n{run.strategy}: better than its base image in {summary['better']} of {summary['cases']} cases, "
                f"worse in {summary['worse']}; pixels changed outside its masks: {summary['changed_outside_mask']}"
            )
    return "\n".join(lines)


def seed_spread(runs: list[StrategyRun], sets: list[str]) -> str:
    """Each strategy's pass rate per set on each seed's cases and on all of them; empty for one
    seed. One seed's 50 cases move a rate by 2 points a case, so a difference between strategies
    is worth trusting only where it holds across seeds."""
    seeds = sorted({r["case_seed"] for run in runs for rows in run.results.values() for r in rows})
    if len(seeds) < 2:
        return ""
    header = ["strategy", "set", *(f"seed {one}" for one in seeds), "all"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        for set_name in sets:
            rows = run.results.get(set_name, [])
            cells = [run.strategy, set_name]
            for one in seeds:
                mine = [r for r in rows if r["case_seed"] == one]
                cells.append(f"{sum(bool(r['passed']) for r in mine) / len(mine):.0%}" if mine else "-")
            cells.append(f"{run.accuracy(set_name):.0%}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    """``--seed``: one seed ("0") or several, comma-separated ("0,200"), each a whole number."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInputError(
            "seed",
            f"{text!r} is not a seed or a list of seeds",
            "use whole numbers, e.g. --seed 0 or --seed 0,200",
        ) from None
    if len(set(seeds)) != len(seeds):
        raise InvalidInputError("seed", f"{text!r} names a seed twice", "give each seed once")
    return seeds


def time_by_objects(runs: list[StrategyRun]) -> str:
    """Each strategy's time relative to vanilla's on the same cases, grouped by how many distinct
    objects the plan has (what Stitch's cost grows with); empty without vanilla in the runs."""
    vanilla = next((r for r in runs if r.strategy == "vanilla"), None)
    if vanilla is None:
        return ""

    def seconds(run: StrategyRun) -> dict[tuple[str, int], tuple[int, float]]:
        return {
            (set_name, row["index"]): (row["objects"], row["seconds"])
            for set_name, rows in run.results.items()
            for row in rows
            if "objects" in row
        }

    base = seconds(vanilla)
    counts = sorted({objects for objects, _ in base.values()})
    if not counts:
        return ""
    header = ["strategy", *(f"{k} object{'s' if k > 1 else ''}" for k in counts)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        own = seconds(run)
        cells = [run.strategy]
        for k in counts:
            keys = [key for key, (objects, _) in base.items() if objects == k and key in own]
            total = sum(base[key][1] for key in keys)
            cells.append(f"{sum(own[key][1] for key in keys) / total:.2f}x" if keys and total > 0 else "-")
        lines.append("| " + " | ".join(cells) + " |")
    title = "Time vs vanilla on the same cases, by distinct objects in the plan:"
    return f"{title}\n\n" + "\n".join(lines) + f"\n\n{BY_OBJECTS_LEGEND}"


def _tile(case: BenchCase, image: Image.Image, passed: bool, side: int) -> Image.Image:
    """One example: the image enlarged, the plan's boxes in grey, framed green (passed) or red."""
    tile = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(tile)
    for obj in case.plan.objects:
        for x0, y0, x1, y1 in obj.boxes:
            draw.rectangle((x0 * side, y0 * side, x1 * side - 1, y1 * side - 1), outline=(110, 110, 110))
    draw.rectangle((0, 0, side - 1, side - 1), outline=PASS_COLOUR if passed else FAIL_COLOUR, width=3)
    return tile


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float) -> str:
    """``text`` cut at a word (with "...") so that it fits ``width`` pixels."""
    if draw.textlength(text) <= width:
        return text
    words = text.split()
    while words and draw.textlength(" ".join(words) + "...") > width:
        words.pop()
    return " ".join(words) + "..." if words else "..."


def _wrap(draw: ImageDraw.ImageDraw, text: str, width: float, lines: int) -> list[str]:
    """Up to ``lines`` lines of ``text`` each within ``width`` pixels; the last one shortened."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines - 1:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}") <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out.append(_fit(draw, " ".join(words), width))
    return out


def label_band(case: BenchCase, passed: bool, width: int) -> Image.Image:
    """What goes under a tile: a green PASS or red FAIL mark, the set and seed, the prompt
    (wrapped to two lines, shortened), so a grid can be read without the JSON beside it."""
    band = Image.new("RGB", (width, LABEL_BAND), (245, 245, 245))
    draw = ImageDraw.Draw(band)
    draw.rectangle(MARK_BOX, fill=PASS_COLOUR if passed else FAIL_COLOUR)
    draw.text((MARK_BOX[0] + 3, MARK_BOX[1]), "PASS" if passed else "FAIL", fill=(255, 255, 255))
    set_label = _fit(draw, f"{case.set}  seed {case.seed}", width - MARK_BOX[2] - 6)
    draw.text((MARK_BOX[2] + 4, MARK_BOX[1]), set_label, fill=(20, 20, 20))
    for i, line in enumerate(_wrap(draw, case.plan.prompt, width - 6, 2)):
        draw.text((3, 17 + 11 * i), line, fill=(50, 50, 50))
    return band


def save_grid(run: StrategyRun, path: Path, scale: int = 2) -> Path:
    """One labelled row per set (up to GRID_EXAMPLES examples): plan boxes in grey, frames green
    when the case passed and red when it failed, the set's accuracy beside its name, and under
    each tile its label band (:func:`label_band`)."""
    sets = [name for name, examples in run.examples.items() if examples]
    if not sets:
        raise ValueError("no examples to draw")
    side = run.examples[sets[0]][0][1].width * scale
    label_width, header, gap = 150, 22, 4
    row_height = side + LABEL_BAND + gap
    columns = max(len(run.examples[name]) for name in sets)
    width = label_width + columns * (side + gap)
    grid = Image.new("RGB", (width, header + len(sets) * row_height), (30, 30, 30))
    draw = ImageDraw.Draw(grid)
    draw.text(
        (6, 5),
        f"{run.strategy}   (grey: plan boxes; frame and mark green = passed, red = failed)",
        fill=(230, 230, 230),
    )
    for row, name in enumerate(sets):
        top = header + row * row_height
        draw.text((6, top + side // 2 - 12), name, fill=(230, 230, 230))
        draw.text(
            (6, top + side // 2 + 2),
            f"{run.accuracy(name):.0%} of {len(run.results[name])}",
            fill=(170, 170, 170),
        )
        for column, (case, image, passed) in enumerate(run.examples[name]):
            left = label_width + column * (side + gap)
            grid.paste(_tile(case, image, passed, side), (left, top))
            grid.paste(label_band(case, passed, side), (left, top + side))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def register(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "toyworld", help="strategies on toy-world prompt sets, judged by the exact evaluator"
    )
    p.add_argument("--n", type=int, default=50, help="cases per set and seed (default 50)")
    p.add_argument("--strategy", default="vanilla", help="comma-separated strategy names, or 'all'")
    p.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets of {', '.join(SETS)}")
    p.add_argument(
        "--seed",
        default="0",
        help="case seed, or several comma-separated (0,200): their cases are pooled, and a table "
        "shows each seed's pass rates beside the pooled ones (default 0)",
    )
    p.add_argument("--backend", default="tiny")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument(
        "--guidance-max-sigma", type=float, help="CFG only at noise levels up to this (default: the model's)"
    )
    p.add_argument("--json", dest="json_path", help="write the results here")
    p.add_argument("--grid-dir", default="out/bench", help="where grid PNGs go (default out/bench)")
    p.add_argument("--chart", type=Path, help="write a bar chart PNG of accuracy per strategy and set here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def case_settings(
    backend: Any, steps: int | None, guidance: float | None, guidance_max_sigma: float | None
) -> Callable[[BenchCase], SamplingSettings]:
    """The settings of each case: the model's defaults, the overrides given, the case's seed."""
    from scenewright.executor.sampler import SamplingSettings

    defaults = backend.defaults

    def settings_for(case: BenchCase) -> SamplingSettings:
        return SamplingSettings(
            height=defaults.height,
            width=defaults.width,
            steps=steps or defaults.steps,
            guidance=defaults.guidance if guidance is None else guidance,
            seed=case.seed,
            guidance_max_sigma=guidance_max_sigma,
        )

    return settings_for


def run(args: argparse.Namespace) -> int:
    from scenewright.backends import load_backend, resolve_backend
    from scenewright.bench.charts import have_matplotlib, toyworld_chart, write_png
    from scenewright.executor.catalogue import check_strategy, strategy_names

    if args.n < 1:
        raise InvalidInputError("n", f"{args.n} cases is too few", "use --n 1 or more")
    seeds = parse_seeds(args.seed)
    strategies = strategy_names() if args.strategy == "all" else [s.strip() for s in args.strategy.split(",")]
    for name in strategies:
        check_strategy(name)  # a clear error for an unknown name or option, before any model loads
    sets = [s.strip() for s in args.sets.split(",")]
    for name in sets:
        if name not in SETS:
            raise InvalidInputError("sets", f"unknown set '{name}'", f"use some of {', '.join(SETS)}")
    if args.chart is not None and args.chart.is_dir():
        raise InvalidInputError("chart", f"{args.chart} is a folder", "give a file path ending in .png")
    chart = args.chart if args.chart is not None and have_matplotlib() else None
    if args.quiet:
        silence_library_bars()
    backend = load_backend(resolve_backend(args.backend))
    settings_for = case_settings(backend, args.steps, args.guidance, args.guidance_max_sigma)
    runs = run_benchmark(backend, strategies, sets, args.n, seeds, settings_for, progress=not args.quiet)
    print(markdown_table(runs, sets))
    spread = seed_spread(runs, sets)
    if spread:
        print("\nPass rates per seed (the table above pools them):\n\n" + spread)
    by_objects = time_by_objects(runs)
    if by_objects:
        print("\n" + by_objects + "\n")
    for r in runs:
        file_name = r.strategy.replace(":", "_") + ".png"
        print(f"grid: {save_grid(r, Path(args.grid_dir) / file_name)}")
    if args.json_path:
        payload = {
            "backend": backend.describe(),
            "n": args.n,
            "seed": seeds[0] if len(seeds) == 1 else seeds,
            "sets": sets,
            "summary": {
                r.strategy: {
                    **{s: r.accuracy(s) for s in sets},
                    **({"single_color": r.accuracy("single", "color_ok")} if "single" in sets else {}),
                    "seconds_per_image": r.seconds_per_image(),
                    **({"refine": refine_summary(r)} if refine_summary(r) else {}),
                }
                for r in runs
            },
            "results": {r.strategy: r.results for r in runs},
        }
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"json: {args.json_path}")
    if chart is not None:
        title = f"bench toyworld: backend {args.backend}, {args.n} cases per set, seed {args.seed}"
        print(f"chart: {write_png(chart, toyworld_chart(runs, sets, title))}")
    return 0
