"""``scenewright bench concept-maps``: do the attention maps put each object where it is?

Each object's map as the agent's attention sheet shows it (``executor.explain``: the model's map
reading, ConceptAttention by default on FLUX-class models) is judged on toy-world images whose
objects the exact evaluator finds in their boxes: the mean of its map inside its boxes over the
mean outside. A map that localises gives a ratio well above 1 (issue 16's bar: >= 3x). Images
are rendered by ``--strategy`` (default the free-pass Stitch, which places most objects where the
plan asks), so the maps are read on the kind of image refine checks. ``--reader``, ``--blocks``,
``--read-fraction`` and ``--concept-inputs`` try other readings than the model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from scenewright.errors import InvalidInputError

BAR = 3.0


def box_mask(boxes: list[tuple[float, float, float, float]], grid: tuple[int, int]) -> np.ndarray:
    """Tokens whose centres lie in any of the normalised ``boxes`` on a (rows, cols) grid."""
    rows, cols = grid
    centre_y = (np.arange(rows) + 0.5) / rows
    centre_x = (np.arange(cols) + 0.5) / cols
    mask = np.zeros(grid, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= ((centre_y >= y0) & (centre_y < y1))[:, None] & ((centre_x >= x0) & (centre_x < x1))[None, :]
    return mask


def localisation(object_map: np.ndarray, inside: np.ndarray) -> float:
    """Mean of the map inside over the mean outside (inf when nothing is outside or it is zero)."""
    if not inside.any() or inside.all():
        return float("inf")
    outside = float(object_map[~inside].mean())
    return float(object_map[inside].mean()) / outside if outside > 0 else float("inf")


def measure(
    backend: Any, strategy: str, sets: list[str], n: int, seed: int, progress: bool, reading: Any = None
) -> list[dict[str, Any]]:
    """One row per object drawn in its boxes: case, object, ratio."""
    from scenewright.arrays import to_numpy
    from scenewright.bench.cases import make_cases
    from scenewright.bench.progress import Progress
    from scenewright.bench.toyworld import case_settings
    from scenewright.executor.explain import read_object_maps
    from scenewright.executor.strategies import run_strategy
    from scenewright.tools.evaluator import score_plan

    settings_for = case_settings(backend, None, None, None)
    cases = [case for name in sets for case in make_cases(name, n, seed)]
    meter = Progress(len(cases), quiet=not progress)
    rows = []
    for case in cases:
        settings = settings_for(case)
        image = run_strategy(strategy, backend, case.plan, settings).image
        score = score_plan(image, case.plan)
        maps = to_numpy(read_object_maps(backend, image, case.plan, settings, reading).attention)
        grid = (maps.shape[1], maps.shape[2])
        measured = 0
        for index, (obj, judged) in enumerate(zip(case.plan.objects, score.objects, strict=True)):
            if not judged.in_boxes or not judged.found:
                continue
            ratio = localisation(maps[index], box_mask(list(obj.boxes), grid))
            rows.append({"set": case.set, "case": case.index, "object": obj.prompt, "ratio": ratio})
            measured += 1
        meter.step(f"{case.set} #{case.index}: {measured} of {len(case.plan.objects)} objects in their boxes")
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rows]
    finite = [r for r in ratios if np.isfinite(r)]
    return {
        "objects": len(ratios),
        "median_ratio": statistics.median(finite) if finite else float("nan"),
        "min_ratio": min(ratios) if ratios else float("nan"),
        "share_at_bar": sum(r >= BAR for r in ratios) / len(ratios) if ratios else float("nan"),
    }


def register(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "concept-maps",
        help="how well the attention maps localise each object (inside its box vs outside)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", default="tiny16")
    p.add_argument("--strategy", default="stitch", help="what renders the images (default stitch)")
    p.add_argument("--sets", default="position,binding", help="toy-world sets (default position,binding)")
    p.add_argument("--n", type=int, default=20, help="cases per set (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reader", help="concept or cross (default: the model's reading)")
    p.add_argument("--blocks", help="late, double or all (default: the model's reading)")
    p.add_argument("--read-fraction", type=float, help="point of the schedule read (default: the model's)")
    p.add_argument(
        "--floor",
        type=float,
        help="quantile taken off each cross-attention map, 0 for the raw map (default: the model's)",
    )
    p.add_argument(
        "--concept-inputs",
        help="scene or paper: the concept reader's tokens, modulation, blocks and step (default: the model's)",
    )
    p.add_argument("--json", dest="json_path", type=Path, help="write every object's ratio here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def reading_for(backend: Any, args: argparse.Namespace) -> Any:
    """The model's map reading with any of ``--reader``, ``--blocks``, ``--read-fraction``, ``--floor``
    and ``--concept-inputs`` replaced."""
    from scenewright.executor.explain import MapReading, map_reading

    given = {
        "reader": args.reader,
        "blocks": args.blocks,
        "read_fraction": args.read_fraction,
        "floor": args.floor,
        "concept_inputs": getattr(args, "concept_inputs", None),
    }
    changes = {key: value for key, value in given.items() if value is not None}
    return MapReading(**{**asdict(map_reading(backend)), **changes})


def run(args: argparse.Namespace) -> int:
    from scenewright.backends import load_backend, resolve_backend
    from scenewright.bench.cases import SETS
    from scenewright.executor.strategies import get_strategy

    if args.n < 1:
        raise InvalidInputError("n", f"{args.n} cases is too few", "use --n 1 or more")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    for name in sets:
        if name not in SETS:
            raise InvalidInputError("sets", f"unknown set '{name}'", f"use some of {', '.join(SETS)}")
    get_strategy(args.strategy)
    backend = load_backend(resolve_backend(args.backend))
    reading = reading_for(backend, args)
    rows = measure(backend, args.strategy, sets, args.n, args.seed, progress=not args.quiet, reading=reading)
    figures = summary(rows)
    where = (
        "ConceptAttention's inputs (bare-word tokens, zero pooled vector, last 4/19 of the double"
        " blocks, step 2 of 4)"
        if reading.concept_inputs == "paper"
        else f"{reading.blocks} blocks, at {reading.read_fraction:g} of the schedule"
    )
    print(
        f"reading: {reading.reader}, {where}"
        + (
            f", less each map's {reading.floor:g} quantile"
            if reading.reader == "cross" and reading.floor
            else ""
        )
        + "\n"
    )
    print("| objects in their boxes | median inside/outside | lowest | share >= 3x |")
    print("|---|---|---|---|")
    print(
        f"| {figures['objects']} | {figures['median_ratio']:.2f}x | {figures['min_ratio']:.2f}x "
        f"| {figures['share_at_bar']:.0%} |"
    )
    print(
        "\nLegend: one row per object the exact evaluator finds in its boxes; ratio: the mean of its "
        "attention map inside its boxes over the mean outside (1x: no localisation)."
    )
    if args.json_path:
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "backend": args.backend,
            "strategy": args.strategy,
            "sets": sets,
            "n": args.n,
            "reading": asdict(reading),
            **figures,
            "rows": rows,
        }
        args.json_path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"json: {args.json_path}")
    return 0
