"""Render GenEval's prompts: this rank's share, every missing sample, into GenEval's layout.

Resumable: a sample already on disk is skipped (written atomically, so it is whole). A prompt
whose planning or rendering fails is recorded in its ``error.json`` and the run goes on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenewright.bench.geneval.layout import create_exclusive, prompt_dir, sample_path
from scenewright.bench.rendering import Renderer
from scenewright.bench.shard import Shard
from scenewright.bench.sharded_run import attempt
from scenewright.tools.output import save_png


@dataclass
class RankSummary:
    rank: int
    prompts: int = 0
    rendered: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def render_prompts(
    out: Path,
    entries: list[dict[str, Any]],
    renderer: Renderer,
    shard: Shard,
    n_samples: int,
    progress: bool = True,
) -> RankSummary:
    """Render this rank's prompts; returns what it did."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    mine = shard.indices(len(entries))
    summary = RankSummary(shard.rank, prompts=len(mine))
    todo = {i: [k for k in range(n_samples) if not sample_path(out, i, k).is_file()] for i in mine}
    summary.skipped = sum(n_samples - len(missing) for missing in todo.values())
    bar = tqdm(
        total=len(mine) * n_samples, initial=summary.skipped, disable=not progress, file=sys.stderr,
        desc=f"rank {shard.rank}/{shard.world}" if shard.world > 1 else "geneval", position=shard.rank,
        unit="image",
    )  # fmt: skip
    try:
        for index in mine:
            folder = prompt_dir(out, index)
            create_exclusive(folder / "metadata.jsonl", json.dumps(entries[index]) + "\n")
            (folder / "samples").mkdir(parents=True, exist_ok=True)
            if not todo[index]:
                continue

            def work(index: int = index) -> None:
                plan = renderer.plan(entries[index]["prompt"])
                for k in todo[index]:
                    image, metadata = renderer.render(plan, renderer.options.seed + k)
                    save_png(image, sample_path(out, index, k), metadata | {"geneval": entries[index]})
                    summary.rendered += 1
                    bar.update(1)

            failure = attempt(folder, index, entries[index]["prompt"], work)
            if failure is not None:
                summary.failed.append(failure)
                bar.update(sum(not sample_path(out, index, k).is_file() for k in todo[index]))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
