"""What ``batch`` and ``eval geneval`` do alike: check, claim the folder, then either start local
ranks or render this rank's share, one prompt at a time, recording a prompt that fails.

Kept in one place so both commands shard, resume and refuse the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenewright.bench.rendering import Renderer, RenderOptions
from scenewright.bench.shard import Shard

# The options of ``add_render_options`` that each local rank is given again (``--num-processes``
# is not: a rank renders its own share).
RANK_OPTIONS = ("backend", "strategy", "planner", "steps", "guidance", "height", "width", "seed", "device",
                "dtype", "cpu_offload", "quantize")  # fmt: skip


def child_argv(head: Sequence[str], args: argparse.Namespace) -> list[str]:
    """The command each local rank runs: ``head`` followed by the render options that were set."""
    argv = list(head)
    for option in RANK_OPTIONS:
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(value)]
    return [*argv, "--quiet"] if args.quiet else argv


@dataclass(frozen=True)
class ShardedRun:
    """One rendering command: its folder, what the folder must remember, and how ranks restart it."""

    command: str  # "batch", "eval geneval": named in a refusal
    out: Path
    options: RenderOptions
    record: dict[str, Any]
    rank_argv: list[str]


def run_sharded(args: argparse.Namespace, run: ShardedRun, render: Callable[[Renderer, Shard], int]) -> int:
    """Start ``--num-processes`` local ranks of ``run`` and wait, or (one process, or a rank under
    a launcher) render this process's share with ``render``; the exit code.

    Everything that can be refused without weights is refused, and the folder claimed, before any
    rank starts.
    """
    from scenewright.bench.geneval.layout import claim
    from scenewright.bench.rendering import precheck, quick_check
    from scenewright.bench.shard import current_shard, launched, spawn

    quick_check(run.options, args.device)  # before torch loads to find this rank's device
    if args.num_processes != 1 and not launched():
        precheck(run.options, args.device)
        run.out.mkdir(parents=True, exist_ok=True)
        claim(run.out, run.record, run.command)
        return spawn(args.num_processes, run.rank_argv)
    shard = current_shard(args.device)
    device = shard.device(args.device)
    precheck(run.options, device)
    run.out.mkdir(parents=True, exist_ok=True)
    claim(run.out, run.record, run.command)
    return render(
        Renderer(run.options, device, args.dtype, args.cpu_offload, getattr(args, "quantize", None)), shard
    )


def attempt(folder: Path, index: int, prompt: str, work: Callable[[], None]) -> dict[str, Any] | None:
    """Run one prompt's ``work``; on failure record it in ``folder/error.json`` and return the record
    (one prompt's failure must not end a run of hundreds); on success clear an old record."""
    from scenewright.bench.geneval.layout import ERROR_FILE
    from scenewright.tools.output import save_json

    try:
        work()
    except Exception as error:
        record = {"index": index, "prompt": prompt,
                  "error": f"{type(error).__name__}: {error}".splitlines()[0][:500]}  # fmt: skip
        save_json(record, folder / ERROR_FILE, overwrite=True)
        return record
    (folder / ERROR_FILE).unlink(missing_ok=True)  # finished now: an old failure is history
    return None
