"""``scenewright batch PROMPTS --out DIR``: many prompts, one folder each, sharded over ranks.

PROMPTS is a text file (one prompt a line; blank lines and ``#`` comments skipped) or JSONL
(objects with a ``prompt`` field). Prompt ``i`` goes to ``DIR/NNNNN/`` (``image.png`` with the
plan and settings in its metadata, ``plan.json``); a prompt already rendered is skipped, a
failing one recorded in its ``error.json``. Each rank writes ``summary-rank-R.json``; the last
to finish (or the launching process) merges them into ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from scenewright.bench.rendering import Renderer, RenderOptions, add_render_options
from scenewright.bench.shard import Shard, launched
from scenewright.errors import InvalidInputError
from scenewright.terminal import printable
from scenewright.untrusted import load_json

FIELD = "prompts"
FIX = 'give a text file with one prompt a line, or JSONL with a "prompt" field on each line'
MAX_BYTES = 50_000_000
# A batch is a benchmark's prompts (hundreds to a few thousand); 100,000 is months of renders.
MAX_PROMPTS = 100_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``batch PROMPTS --out DIR``."""
    p = subparsers.add_parser("batch", help="render many prompts (a text or JSONL file), one folder each")
    p.add_argument("prompts", help='a text file (one prompt a line) or JSONL with a "prompt" field')
    p.add_argument("--out", required=True, help="one folder per prompt goes here, with summary.json")
    add_render_options(p)
    p.set_defaults(handler=batch_command)


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a text or JSONL file, in order; a one-line error naming a bad line."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size > MAX_BYTES:
        raise InvalidInputError(FIELD, f"{file} is not a file of at most {MAX_BYTES:,} bytes", FIX)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InvalidInputError(FIELD, f"{file} is not UTF-8 text", FIX) from error
    kept = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    jsonl = file.suffix.lower() == ".jsonl" or (bool(kept) and kept[0][1].startswith("{"))
    prompts = []
    for number, line in kept:
        if not jsonl:
            if not line.startswith("#"):
                prompts.append(line)
            continue
        try:
            entry = load_json(line, FIELD, FIX)
        except InvalidInputError as error:
            raise InvalidInputError(FIELD, f"{file} line {number}: {error.problem}", FIX) from None
        prompt = entry.get("prompt") if isinstance(entry, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInputError(FIELD, f'{file} line {number}: no "prompt" text', FIX)
        prompts.append(prompt.strip())
    if not prompts:
        raise InvalidInputError(FIELD, f"{file} holds no prompts", FIX)
    if len(prompts) > MAX_PROMPTS:
        raise InvalidInputError(
            FIELD,
            f"{file} holds {len(prompts):,} prompts (at most {MAX_PROMPTS:,})",
            "split it into several batches",
        )
    return prompts


def render_batch(
    out: Path, prompts: list[str], renderer: Renderer, shard: Shard, progress: bool
) -> dict[str, Any]:
    """Render this rank's prompts; its summary (also written to ``summary-rank-R.json``)."""
    from tqdm.auto import tqdm

    from scenewright.bench.geneval.layout import prompt_dir
    from scenewright.bench.sharded_run import attempt
    from scenewright.tools.output import save_json, save_png, write_together

    started = time.perf_counter()
    mine = shard.indices(len(prompts))
    done: list[int] = []
    skipped: list[int] = []
    failed: list[dict[str, Any]] = []
    for index in tqdm(mine, desc=f"rank {shard.rank}/{shard.world}" if shard.world > 1 else "batch",
                      disable=not progress, file=sys.stderr, position=shard.rank, unit="prompt"):  # fmt: skip
        folder = prompt_dir(out, index)
        if (folder / "image.png").is_file():
            skipped.append(index)
            continue

        def work(folder: Path = folder, prompt: str = prompts[index], index: int = index) -> None:
            plan, warnings = renderer.plan_with_warnings(prompt)
            for warning in warnings:  # a word nobody asked for is said, not drawn silently
                print(printable(f"warning: prompt {index}: {warning}"), file=sys.stderr)
            image, metadata = renderer.render(plan, renderer.options.seed)
            with write_together():  # plan.json and image.png appear together
                save_json(plan.to_json_dict(), folder / "plan.json", overwrite=True)
                save_png(image, folder / "image.png", metadata)

        failure = attempt(folder, index, prompts[index], work)
        if failure is None:
            done.append(index)
        else:
            failed.append(failure)
    summary = {"rank": shard.rank, "world": shard.world, "prompts": len(mine), "rendered": done,
               "skipped": skipped, "failed": failed, "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    save_json(summary, out / f"summary-rank-{shard.rank}.json", overwrite=True)
    return summary


def merge_summaries(out: Path, world: int) -> Path | None:
    """``summary.json`` from every rank's summary, once all ``world`` of them are there."""
    from scenewright.tools.output import save_json

    parts = [out / f"summary-rank-{r}.json" for r in range(world)]
    if not all(p.is_file() for p in parts):
        return None
    ranks = [json.loads(p.read_text(encoding="utf-8")) for p in parts]
    merged = {
        "prompts": sum(r["prompts"] for r in ranks),
        "rendered": sorted(i for r in ranks for i in r["rendered"]),
        "skipped": sorted(i for r in ranks for i in r["skipped"]),
        "failed": sorted((f for r in ranks for f in r["failed"]), key=lambda f: f["index"]),
        "seconds_per_rank": [r["seconds"] for r in ranks],
    }
    return save_json(merged, out / "summary.json", overwrite=True)


def batch_command(args: argparse.Namespace) -> int:
    from scenewright.bench.geneval.layout import file_digest
    from scenewright.bench.sharded_run import ShardedRun, child_argv, run_sharded
    from scenewright.tools.output import check_output_folder

    prompts = read_prompts(args.prompts)
    check_output_folder(args.out)
    out = Path(args.out)
    options = RenderOptions.from_args(args)
    record = {"command": "batch", "prompts_sha256": file_digest(Path(args.prompts)), **options.record()}
    run = ShardedRun(
        "batch", out, options, record, child_argv(["batch", str(args.prompts), "--out", str(out)], args)
    )

    def render(renderer: Renderer, shard: Shard) -> int:
        summary = render_batch(out, prompts, renderer, shard, progress=not args.quiet)
        merged = merge_summaries(out, shard.world)
        print(f"rank {shard.rank}/{shard.world}: {len(summary['rendered'])} rendered, {len(summary['skipped'])} "
              f"already there, {len(summary['failed'])} failed" + (f"; summary: {merged}" if merged else ""),
              file=sys.stderr)  # fmt: skip
        return 1 if summary["failed"] else 0

    code = run_sharded(args, run, render)
    if args.num_processes != 1 and not launched():
        print(f"summary: {merge_summaries(out, args.num_processes)}", file=sys.stderr)
    return code
