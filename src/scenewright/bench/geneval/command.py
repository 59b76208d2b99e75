"""``scenewright eval geneval METADATA --out DIR`` and ``scenewright eval geneval-score DIR``.

The first renders GenEval's prompts into its folder layout (sharded over ranks; resumable); the
second scores such a folder by GenEval's rules with a detector and CLIP and prints the per-tag
table beside the published FLUX.1-dev row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scenewright.bench.rendering import RenderOptions, add_render_options
from scenewright.errors import InvalidInputError
from scenewright.terminal import show_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` with its ``geneval`` and ``geneval-score`` subcommands."""
    p = subparsers.add_parser("eval", help="benchmarks on real models: geneval (render), geneval-score")
    sub = p.add_subparsers(dest="eval", metavar="BENCHMARK", required=True)
    g = sub.add_parser("geneval", help="render GenEval's prompts into its folder layout (resumable, sharded)")
    g.add_argument("metadata", help="GenEval's evaluation_metadata.jsonl")
    g.add_argument("--out", required=True, help="the folder GenEval's evaluator reads")
    g.add_argument("--n-samples", type=int, default=4, help="images per prompt (default 4, as GenEval)")
    add_render_options(g)
    g.add_argument("--score", action="store_true", help="score the folder afterwards (needs --detector)")
    _add_score_options(g)
    g.set_defaults(handler=geneval_command)
    s = sub.add_parser("geneval-score", help="score a GenEval folder by GenEval's rules; print the table")
    s.add_argument("out", metavar="DIR", help="a folder written by eval geneval (or GenEval's generator)")
    _add_score_options(s)
    s.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(handler=score_command, detector_required=True)


def _add_score_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", metavar="CHECKPOINT",
                   help="Mask2Former COCO instance (GenEval's family), OWLv2 or Grounding DINO folder or hub id")  # fmt: skip
    p.add_argument(
        "--clip", metavar="CHECKPOINT", help="CLIP for colours (default openai/clip-vit-large-patch14)"
    )
    p.add_argument("--threshold", type=float, help="confidence to count an instance (default: per detector)")
    p.add_argument(
        "--counting-threshold", type=float, help="the same for counting prompts (default: per detector)"
    )
    p.add_argument("--max-overlap", type=float, help="drop boxes overlapping a kept one by this IoU (default: per detector)")  # fmt: skip
    p.add_argument("--results", help="where the per-image results go (default DIR/results-DETECTOR.jsonl)")


def _record(args: argparse.Namespace, options: RenderOptions) -> dict[str, Any]:
    from scenewright.bench.geneval.layout import file_digest

    return {"command": "eval geneval", "metadata_sha256": file_digest(Path(args.metadata)),
            "n_samples": args.n_samples, **options.record()}  # fmt: skip


# GenEval draws 4 images a prompt; 100 of its 553 prompts is already 55,300 images (days on one
# GPU). A larger count is a typo, and every sample's seed (seed + k) must stay a seed.
MAX_SAMPLES = 100


def check_n_samples(n_samples: int, seed: int) -> None:
    """Refuse a sample count outside 1..MAX_SAMPLES, or one whose last seed leaves [0, 2**63)."""
    from scenewright.executor.limits import check_seed

    if not 1 <= n_samples <= MAX_SAMPLES:
        raise InvalidInputError(
            "n-samples", f"{n_samples} is outside 1..{MAX_SAMPLES}", "use --n-samples 4 (GenEval's count)"
        )
    check_seed(seed + n_samples - 1)


def geneval_command(args: argparse.Namespace) -> int:
    from scenewright.bench.geneval.generate import render_prompts
    from scenewright.bench.geneval.metadata import read_metadata
    from scenewright.bench.rendering import Renderer
    from scenewright.bench.shard import Shard, launched
    from scenewright.bench.sharded_run import ShardedRun, child_argv, run_sharded
    from scenewright.tools.output import check_output_folder

    entries = read_metadata(args.metadata)
    check_n_samples(args.n_samples, args.seed)
    if args.score and not args.detector:
        raise InvalidInputError("score", "needs a detector", "pass --detector CHECKPOINT with --score")
    if args.score:
        from scenewright.tools.detection.color import resolve_clip
        from scenewright.tools.detection.detectors import resolve_detector

        resolve_detector(args.detector)  # refused now, not after hours of rendering
        if args.clip is not None:
            resolve_clip(args.clip)
    check_output_folder(args.out)
    out = Path(args.out)
    options = RenderOptions.from_args(args)
    # Each local rank runs this command without --num-processes and --score (the launcher scores).
    head = ["eval", "geneval", str(args.metadata), "--out", str(out), "--n-samples", str(args.n_samples)]
    run = ShardedRun("eval geneval", out, options, _record(args, options), child_argv(head, args))

    def render(renderer: Renderer, shard: Shard) -> int:
        summary = render_prompts(
            out, entries, renderer, shard, args.n_samples, progress=show_progress(args.quiet)
        )
        print(
            f"rank {shard.rank}/{shard.world}: {summary.prompts} prompts, {summary.rendered} images rendered, "
            f"{summary.skipped} already there, {len(summary.failed)} prompts failed, {summary.seconds:.1f}s",
            file=sys.stderr,
        )
        for failure in summary.failed:
            print(f"failed: {failure['index']:05d} {failure['error']}", file=sys.stderr)
        return 1 if summary.failed else 0

    code = run_sharded(args, run, render)
    if args.score and not launched():
        return max(code, score_command(args))
    return code


def score_command(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from scenewright.bench.geneval.score import images, score_image, table, tag_scores
    from scenewright.tools.detection.color import classify_colors
    from scenewright.tools.detection.detectors import THRESHOLDS, Thresholds
    from scenewright.tools.detection.lazy import LazyDetectorVerifier
    from scenewright.tools.output import atomic_write_bytes

    if not args.detector:
        raise InvalidInputError("detector", "is needed to score", "pass --detector CHECKPOINT")
    out = Path(args.out)
    if not out.is_dir():
        raise InvalidInputError("out", f"{out} is not a folder", "give the folder eval geneval wrote")
    found = images(out)
    if not found:
        raise InvalidInputError(
            "out", f"{out} holds no GenEval samples", "render them first with eval geneval"
        )
    lazy = LazyDetectorVerifier(args.detector, args.clip, args.device)
    verifier = lazy.get()
    base = THRESHOLDS.get(verifier.detector.kind, verifier.thresholds)
    thresholds = Thresholds(
        base.threshold if args.threshold is None else args.threshold,
        base.counting if args.counting_threshold is None else args.counting_threshold,
        base.max_overlap if args.max_overlap is None else args.max_overlap,
    )

    def colors(image: Any, instances: Any, name: str) -> list[str]:
        scorer = verifier.color_scorer()
        assert scorer is not None
        return classify_colors(image, instances, name, scorer)

    results = [
        score_image(path, metadata, verifier.detector, thresholds, colors)
        for path, metadata in tqdm(
            found, desc="scoring", disable=not show_progress(args.quiet), file=sys.stderr, unit="image"
        )
    ]
    target = Path(args.results) if args.results else out / f"results-{verifier.detector.kind}.jsonl"
    text = "".join(json.dumps(r.row()) + "\n" for r in results)
    written = atomic_write_bytes(target, text.encode(), overwrite=False)
    print(table(tag_scores(results), label=f"this run ({len(results)} images)"))
    print(f"results: {written}", file=sys.stderr)
    return 0
