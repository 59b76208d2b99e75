"""Render GenEval's prompts: this rank's share, every missing sample, into GenEval's layout.

Resumable: a sample already on disk is skipped (written atomically, so it is whole). A prompt
whose planning or rendering fails is recorded in its ``error.json`` and the run goes on. Each
sample's verdict (the exact judge on the embedded models; "cannot verify" elsewhere, where a
detector scores the folder afterwards) goes to ``NNNNN/verdicts/KKKKK.json`` and its plan's boxes
over it to ``NNNNN/overlays/KKKKK.png``, beside GenEval's layout (its reader reads neither).
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
from scenewright.bench.verdicts import listed, order
from scenewright.tools.output import save_png


@dataclass
class RankSummary:
    rank: int
    prompts: int = 0
    rendered: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    images: list[dict[str, Any]] = field(default_factory=list)  # every sample's verdict, listed

    def record(self) -> dict[str, Any]:
        return {"rank": self.rank, "prompts": self.prompts, "rendered": self.rendered, "skipped": self.skipped,
                "failed": self.failed, "images": self.images, "seconds": round(self.seconds, 3)}  # fmt: skip


def verdict_path(out: Path, index: int, sample: int) -> Path:
    return prompt_dir(out, index) / "verdicts" / f"{sample:05}.json"


def overlay_path(out: Path, index: int, sample: int) -> Path:
    return prompt_dir(out, index) / "overlays" / f"{sample:05}.png"


def judge_sample(
    out: Path, index: int, sample: int, prompt: str, seed: int, image: Any, plan: Any, tiny: bool
) -> dict[str, Any]:
    """Write a sample's verdict and overlay; what summary.json lists of it."""
    from scenewright.bench.verdicts import judge_image, listed
    from scenewright.tools.output import save_json
    from scenewright.tools.overlay import write_overlay

    record = {
        "index": index,
        "sample": sample,
        "seed": seed,
        "prompt": prompt,
        **judge_image(image, plan, tiny),
    }
    write_overlay(
        image, plan, overlay_path(out, index, sample), {"plan": plan.to_json_dict()}, overwrite=True
    )
    save_json(record, verdict_path(out, index, sample), overwrite=True)
    return listed(record)


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

    from scenewright.backends.tiny import TinyBackend

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

            for k in range(n_samples):
                if k not in todo[index] and verdict_path(out, index, k).is_file():
                    summary.images.append(listed(json.loads(verdict_path(out, index, k).read_text("utf-8"))))

            def work(index: int = index) -> None:
                prompt = entries[index]["prompt"]
                plan = renderer.plan(prompt)
                tiny = isinstance(renderer.backend, TinyBackend)
                for k in todo[index]:
                    seed = renderer.options.seed + k
                    image, metadata = renderer.render(plan, seed)
                    save_png(image, sample_path(out, index, k), metadata | {"geneval": entries[index]})
                    summary.images.append(judge_sample(out, index, k, prompt, seed, image, plan, tiny))
                    summary.rendered += 1
                    bar.update(1)

            failure = attempt(folder, index, entries[index]["prompt"], work)
            if failure is not None:
                summary.failed.append(failure)
                bar.update(sum(not sample_path(out, index, k).is_file() for k in todo[index]))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - started
    summary.images.sort(key=order)
    return summary
