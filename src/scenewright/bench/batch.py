"""``scenewright batch PROMPTS --out DIR``: many prompts, one folder each, sharded over ranks.

PROMPTS is a text file (one prompt a line; blank lines and ``#`` comments skipped) or JSONL
(objects with a ``prompt`` field). Each prompt goes through ``generate``'s agent with
``generate``'s options (negative prompt, ``--n-images``, refine rounds, detector): prompt ``i``
goes to ``DIR/NNNNN/`` (``DIR/NNNNN/seed-S/`` for several images), with ``image.png`` (plan and
settings in its metadata), ``plan.json``, ``overlay.png`` and ``verdict.json``, the image's
per-object check and verdict, written last. A finished image is skipped on a rerun, a failing
prompt recorded in its ``error.json``. Each rank writes ``summary-rank-R.json``; the last to
finish (or the launching process) merges them into ``summary.json``, which lists every image's
verdict, the images that differ from their plan, those nothing could verify and the blank ones,
as the end of the run prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenewright.bench.rendering import Renderer, RenderOptions, add_render_options
from scenewright.bench.shard import Shard, launched
from scenewright.bench.verdicts import failures_of, listed, order, report_lines
from scenewright.errors import InvalidInputError
from scenewright.terminal import printable
from scenewright.untrusted import load_json

if TYPE_CHECKING:
    from scenewright.agent.core import Agent

FIELD = "prompts"
FIX = 'give a text file with one prompt a line, or JSONL with a "prompt" field on each line'
MAX_BYTES = 50_000_000
# A batch is a benchmark's prompts (hundreds to a few thousand); 100,000 is months of renders.
MAX_PROMPTS = 100_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``batch PROMPTS --out DIR`` with ``generate``'s render options."""
    from scenewright.agent.generate import add_generate_options
    from scenewright.agent.options import add_image_options

    p = subparsers.add_parser("batch", help="render many prompts (a text or JSONL file), one folder each")
    p.add_argument("prompts", help='a text file (one prompt a line) or JSONL with a "prompt" field')
    p.add_argument("--out", required=True, help="one folder per prompt goes here, with summary.json")
    add_render_options(p, strategy_and_planner=False)
    add_image_options(p)
    add_generate_options(p)  # strategy, planner, refine rounds, SAM, detector: as generate has them
    p.set_defaults(handler=batch_command)


# generate's options that every local rank is given again (beside sharded_run's RANK_OPTIONS).
AGENT_OPTIONS = ("negative_prompt", "n_images", "refine_rounds", "sam", "detector", "clip", "llm_timeout")
VERDICT_FILE = "verdict.json"


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


def _item_folders(out: Path, index: int, seeds: list[int]) -> list[tuple[int, Path]]:
    """Each seed's folder of prompt ``index``: ``DIR/NNNNN`` for one seed, else ``DIR/NNNNN/seed-S``."""
    from scenewright.bench.geneval.layout import prompt_dir

    folder = prompt_dir(out, index)
    return [(seeds[0], folder)] if len(seeds) == 1 else [(s, folder / f"seed-{s}") for s in seeds]


def render_batch(
    out: Path, prompts: list[str], agent: Agent, shard: Shard, seeds: list[int], progress: bool
) -> dict[str, Any]:
    """Render this rank's prompts through the agent (plan, render, verify, refine), each image's
    verdict beside it; the rank's summary (also written to ``summary-rank-R.json``)."""
    from tqdm.auto import tqdm

    from scenewright.bench.geneval.layout import prompt_dir
    from scenewright.bench.sharded_run import attempt
    from scenewright.tools.output import save_json

    started = time.perf_counter()
    mine = shard.indices(len(prompts))
    done: list[int] = []
    skipped: list[int] = []
    failed: list[dict[str, Any]] = []
    judged: list[dict[str, Any]] = []
    for index in tqdm(mine, desc=f"rank {shard.rank}/{shard.world}" if shard.world > 1 else "batch",
                      disable=not progress, file=sys.stderr, position=shard.rank, unit="prompt"):  # fmt: skip
        todo = _item_folders(out, index, seeds)
        finished = [f for _, f in todo if (f / VERDICT_FILE).is_file()]
        judged.extend(listed(json.loads((f / VERDICT_FILE).read_text(encoding="utf-8"))) for f in finished)
        todo = [(seed, folder) for seed, folder in todo if folder not in finished]
        if not todo:
            skipped.append(index)
            continue

        def work(index: int = index, todo: list[tuple[int, Path]] = todo) -> None:
            for seed, folder in todo:
                judged.append(listed(render_one(agent, prompts[index], index, seed, folder)))

        failure = attempt(prompt_dir(out, index), index, prompts[index], work)
        if failure is None:
            done.append(index)
        else:
            failed.append(failure)
    summary = {"rank": shard.rank, "world": shard.world, "prompts": len(mine), "rendered": done,
               "skipped": skipped, "failed": failed, "images": sorted(judged, key=order),
               "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    save_json(summary, out / f"summary-rank-{shard.rank}.json", overwrite=True)
    return summary


def render_one(agent: Agent, prompt: str, index: int, seed: int, folder: Path) -> dict[str, Any]:
    """One image of one prompt into ``folder`` (image, plan, overlay, attention maps), then its
    verdict in ``verdict.json``, written last: a folder with one is finished."""
    from scenewright.agent.nodes import is_blank
    from scenewright.agent.object_report import result_lines, short_list
    from scenewright.errors import ScenewrightError
    from scenewright.tools.output import save_json

    agent.tools.out_dir = folder
    result = agent.run(prompt, seed=seed, thread_id=f"prompt-{index}-seed-{seed}")
    for note in result.notes:  # a word the model never learned is said, not drawn silently
        print(printable(f"warning: prompt {index}: {note}"), file=sys.stderr)
    if not result.ok:
        raise ScenewrightError(result.errors[0] if result.errors else f"the render ended {result.status}")
    lines, said = result_lines(result)
    record = {
        "index": index, "seed": seed, "prompt": prompt, "verdict": said,
        "objects": short_list(lines), "lines": [line.text for line in lines],
        "blank": result.image is not None and is_blank(result.image),
        "strategy": result.strategy, "notes": list(result.notes),
        "paths": {kind: os.path.relpath(path, folder) for kind, path in result.paths.items()},
    }  # fmt: skip
    save_json(record, folder / VERDICT_FILE, overwrite=True)
    return record


def merge_summaries(out: Path, world: int) -> dict[str, Any] | None:
    """``summary.json`` from every rank's summary, once all ``world`` of them are there: what was
    rendered, skipped and failed, every image's verdict, and the lists of failures and blanks."""
    from scenewright.tools.output import save_json

    parts = [out / f"summary-rank-{r}.json" for r in range(world)]
    if not all(p.is_file() for p in parts):
        return None
    ranks = [json.loads(p.read_text(encoding="utf-8")) for p in parts]
    images = sorted((i for r in ranks for i in r["images"]), key=order)
    merged = {
        "prompts": sum(r["prompts"] for r in ranks),
        "rendered": sorted(i for r in ranks for i in r["rendered"]),
        "skipped": sorted(i for r in ranks for i in r["skipped"]),
        "failed": sorted((f for r in ranks for f in r["failed"]), key=lambda f: f["index"]),
        "images": images,
        **failures_of(images),
        "seconds_per_rank": [r["seconds"] for r in ranks],
    }
    save_json(merged, out / "summary.json", overwrite=True)
    return merged


def check_agent_options(args: argparse.Namespace) -> list[int]:
    """``generate``'s options, refused as ``generate`` refuses them, before any weights load; the
    seeds each prompt is rendered with."""
    from scenewright.agent.bounds import check_refine_rounds, check_sampling
    from scenewright.agent.options import check_detector
    from scenewright.agent.run_folders import choose_seeds
    from scenewright.backends.specs import ALIASES, resolve_backend
    from scenewright.executor.limits import check_seed

    check_refine_rounds(args.refine_rounds)
    seeds = choose_seeds(args.seed, None, args.n_images)
    for seed in seeds:
        check_seed(seed)
    spec = ALIASES.get(args.backend.strip()) or resolve_backend(args.backend)
    check_sampling(spec, args.steps, args.height, args.width, args.guidance, args.negative_prompt)
    check_detector(args)
    return seeds


def _agent_argv(args: argparse.Namespace) -> list[str]:
    """generate's options as each local rank is given them again."""
    argv = []
    for option in AGENT_OPTIONS:
        value = getattr(args, option, None)
        if value is not None and value != "":
            argv.append(f"--{option.replace('_', '-')}={value}")
    return argv


def batch_agent(args: argparse.Namespace, renderer: Renderer, out: Path) -> Agent:
    """The agent that renders a rank's prompts: ``generate``'s, on the rank's loaded backend."""
    from scenewright.agent.core import Agent
    from scenewright.agent.options import agent_settings, finish_agent

    settings = agent_settings(args) | {"backend": renderer.backend, "device": renderer.device}
    agent = Agent(
        **settings, out_dir=out, negative_prompt=args.negative_prompt, flat_output=True, overwrite=True
    )
    return finish_agent(agent, args)


def batch_command(args: argparse.Namespace) -> int:
    from scenewright.bench.geneval.layout import file_digest
    from scenewright.bench.sharded_run import ShardedRun, child_argv, run_sharded
    from scenewright.tools.output import check_output_folder

    prompts = read_prompts(args.prompts)
    seeds = check_agent_options(args)
    check_output_folder(args.out)
    out = Path(args.out)
    options = RenderOptions.from_args(args)
    record = {"command": "batch", "prompts_sha256": file_digest(Path(args.prompts)), **options.record(),
              "negative_prompt": args.negative_prompt, "seeds": seeds, "refine_rounds": args.refine_rounds,
              "detector": args.detector, "sam": args.sam}  # fmt: skip
    head = ["batch", str(args.prompts), "--out", str(out), *_agent_argv(args)]
    run = ShardedRun("batch", out, options, record, child_argv(head, args))

    def render(renderer: Renderer, shard: Shard) -> int:
        agent = batch_agent(args, renderer, out)
        try:
            summary = render_batch(out, prompts, agent, shard, seeds, progress=not args.quiet)
        finally:
            agent.close()
        merged = merge_summaries(out, shard.world)
        print(f"rank {shard.rank}/{shard.world}: {len(summary['rendered'])} rendered, {len(summary['skipped'])} "
              f"already there, {len(summary['failed'])} failed", file=sys.stderr)  # fmt: skip
        if merged is not None:
            for line in report_lines(merged["images"]):
                print(line, file=sys.stderr)
            print(f"summary: {out / 'summary.json'}", file=sys.stderr)
        return 1 if summary["failed"] else 0

    code = run_sharded(args, run, render)
    if args.num_processes != 1 and not launched():
        merge_summaries(out, args.num_processes)  # the rank that finished last printed its report
        print(f"summary: {out / 'summary.json'}", file=sys.stderr)
    return code
