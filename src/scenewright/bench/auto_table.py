"""``scenewright bench auto-table``: measure the strategies per kind of plan and write the table
``auto`` picks from (``auto_table.json`` in the model's folder).

Each kind of plan ``auto`` tells apart (executor.auto.PLAN_KINDS) is a set of the toy-world
benchmark; every candidate strategy renders the same cases, taking turns case by case, and the
ranking per kind is by share passed, then by seconds an image (cheaper first). ``--from-json``
builds the table from a ``bench toyworld --json`` file instead of rendering again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError

CANDIDATES = (
    "vanilla", "taca", "regional", "numina", "stitch", "regional+taca", "numina+taca", "stitch+taca",
)  # fmt: skip
DEFAULT_N = 20
SAME_COST = 1.05


def rank(summary: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The strategies measured on set ``kind``, best first: share passed, then seconds an image.
    Times within ``SAME_COST`` of the fastest with the same share count as equal (run-to-run
    noise); among those the one listed first in ``summary`` (the simplest candidate) goes first."""
    rows: list[dict[str, Any]] = [
        {
            "strategy": strategy,
            "passed": round(float(figures[kind]), 4),
            "seconds_per_image": round(float(figures.get("seconds_per_image", 0.0)), 4),
        }
        for strategy, figures in summary.items()
        if isinstance(figures.get(kind), int | float) and figures[kind] == figures[kind]  # not NaN
    ]
    order = {row["strategy"]: i for i, row in enumerate(rows)}
    ranked: list[dict[str, Any]] = []
    for passed in sorted({row["passed"] for row in rows}, reverse=True):
        group = [row for row in rows if row["passed"] == passed]
        fastest = min(row["seconds_per_image"] for row in group)
        near = [row for row in group if row["seconds_per_image"] <= fastest * SAME_COST]
        slower = [row for row in group if row["seconds_per_image"] > fastest * SAME_COST]
        ranked += sorted(near, key=lambda row: order[row["strategy"]])
        ranked += sorted(slower, key=lambda row: (row["seconds_per_image"], order[row["strategy"]]))
    return ranked


def build_table(bench: dict[str, Any], measured_on: str, command: str) -> dict[str, Any]:
    """The auto table from a ``bench toyworld`` JSON payload (its ``summary`` per strategy)."""
    from scenewright.executor.auto import PLAN_KINDS

    summary = bench.get("summary")
    if not isinstance(summary, dict) or not summary:
        raise InvalidInputError(
            "from-json", "has no 'summary' of strategies", "give a bench toyworld --json file"
        )
    kinds = {kind: {"ranking": rank(summary, kind)} for kind in PLAN_KINDS if kind in bench.get("sets", [])}
    if not kinds:
        raise InvalidInputError(
            "sets", "none of the measured sets is a plan kind", f"measure some of {', '.join(PLAN_KINDS)}"
        )
    return {
        "measured_on": measured_on,
        "n": bench.get("n"),
        "seed": bench.get("seed"),
        "command": command,
        "date": datetime.date.today().isoformat(),
        "kinds": kinds,
    }


def default_out(backend_name: str) -> Path | None:
    """Where a table for ``backend_name`` belongs: the embedded models' own folders."""
    from scenewright.backends.registry import resolve_backend
    from scenewright.backends.tiny import AUTO_TABLE_FILE, EMBEDDED_MODEL_DIR

    spec = resolve_backend(backend_name)
    if spec.family != "tiny":
        return None
    return Path(spec.source or EMBEDDED_MODEL_DIR) / AUTO_TABLE_FILE


def recorded_command(given: list[str]) -> str:
    """The command that measures this table again; where it was written does not change it."""
    kept, skip = [], False
    for word in given:
        if skip:
            skip = False
        elif word == "--out":
            skip = True
        elif not word.startswith("--out="):
            kept.append(word)
    return " ".join(["scenewright bench auto-table", shlex.join(kept)]).strip()


def read_bench_json(path: Path) -> dict[str, Any]:
    try:
        bench = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInputError(
            "from-json", f"cannot read {path} ({error})", "give a bench toyworld --json file"
        ) from error
    if not isinstance(bench, dict):
        raise InvalidInputError(
            "from-json", f"{path} is not a JSON object", "give a bench toyworld --json file"
        )
    return bench


def register(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "auto-table",
        help="measure the strategies per kind of plan and write the table auto picks from",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backend", default="tiny", help="an embedded model (tiny, tiny16) or a tiny model folder"
    )
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"cases per kind (default {DEFAULT_N})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", default=",".join(CANDIDATES), help="comma-separated candidates")
    p.add_argument(
        "--from-json", type=Path, help="a bench toyworld --json file to build from, instead of rendering"
    )
    p.add_argument("--out", type=Path, help="where to write (default: the model folder's auto_table.json)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenewright.executor.auto import PLAN_KINDS

    out = args.out or default_out(args.backend)
    if out is None:
        raise InvalidInputError(
            "out", f"backend {args.backend} has no folder of its own here", "pass --out PATH"
        )
    command = recorded_command(sys.argv[3:] if sys.argv[1:3] == ["bench", "auto-table"] else [])
    if args.from_json is not None:
        bench = read_bench_json(args.from_json)
        described = bench.get("backend")
        measured_on = str(described.get("name")) if isinstance(described, dict) else args.backend
    else:
        bench, measured_on = measure(args, list(PLAN_KINDS))
    table = build_table(bench, measured_on, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2) + "\n")
    for kind, entry in table["kinds"].items():
        best = entry["ranking"][0] if entry["ranking"] else None
        shown = f"{best['strategy']} ({best['passed']:.0%})" if best else "-"
        print(f"{kind}: {shown}")
    print(f"table: {out}")
    return 0


def measure(args: argparse.Namespace, sets: list[str]) -> tuple[dict[str, Any], str]:
    """Render every candidate on every plan kind's set; the payload ``build_table`` reads."""
    from scenewright.backends import load_backend, resolve_backend
    from scenewright.bench.toyworld import case_settings, run_benchmark
    from scenewright.executor.catalogue import check_strategy

    if args.n < 1:
        raise InvalidInputError("n", f"{args.n} cases is too few", "use --n 1 or more")
    strategies = [s.strip() for s in args.strategy.split(",") if s.strip()]
    for name in strategies:
        check_strategy(name)
        if name.partition(":")[0] in ("auto", "refine"):
            raise InvalidInputError(
                "strategy", f"'{name}' cannot rank itself", "list the strategies auto picks from"
            )
    backend = load_backend(resolve_backend(args.backend))
    settings_for = case_settings(backend, None, None, None)
    runs = run_benchmark(backend, strategies, sets, args.n, args.seed, settings_for, progress=not args.quiet)
    summary = {
        r.strategy: {**{s: r.accuracy(s) for s in sets}, "seconds_per_image": r.seconds_per_image()}
        for r in runs
    }
    return {"n": args.n, "seed": args.seed, "sets": sets, "summary": summary}, backend.name
