"""``scenewright generate`` on the agent's pipeline: plan, route, render, verify, refine, once.

Writes ``image.png`` (with the plan and settings in its metadata), ``plan.json``, ``overlay.png``
(the plan's boxes over the image) and, when the strategy produced attention maps,
``attention.png``, all straight into ``--out``; shows a progress bar; never overwrites without
``--overwrite``. Input errors are one line and exit code 2, as everywhere in the CLI.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError, ScenewrightError

OUTPUTS = ("image.png", "plan.json", "overlay.png", "attention.png")
# As in scenewright.backends.offload, kept here so that building the parser never imports torch
# (a test holds the two equal).
OFFLOAD_MODES = ("model", "sequential")
# 128 + SIGINT: what a shell expects from a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    """Add ``generate`` to the CLI's sub-commands (nothing heavy is imported here)."""
    p = sub.add_parser("generate", help="render one request to an image, plan.json and metadata")
    p.add_argument("prompt", help='the request, e.g. "two red circles left of a blue square"')
    p.add_argument("--backend", default="tiny", help="tiny (default), flux-dev, flux-schnell, sd3, sd3.5-medium, "
                   "sd3.5-large, a Hugging Face id, or a local checkpoint folder")  # fmt: skip
    p.add_argument("--height", type=int, help="image height in pixels (default: the backend's)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the backend's)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the backend's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backend's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--negative-prompt", default="", help="what to steer away from (CFG backends)")
    p.add_argument("--out", default="out", help="output folder (default out/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16"
    )
    p.add_argument(
        "--cpu-offload", nargs="?", const="model", choices=OFFLOAD_MODES, default=None,
        help="keep weights on the CPU: 'model' (the default when given) moves each model to the GPU while it "
        "runs; 'sequential' streams layer by layer (slow, for cards smaller than the transformer)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_generate_options(p)
    p.set_defaults(handler=generate_command)


def add_generate_options(p: argparse.ArgumentParser) -> None:
    """The options ``generate`` gains from the agent (its existing ones stay as they are)."""
    p.add_argument(
        "--strategy", default="auto", help="auto (default) or a strategy name, e.g. vanilla, regional"
    )
    p.add_argument(
        "--planner", default="rules", choices=["rules", "llm"], help="rules (offline, default) or llm"
    )
    p.add_argument(
        "--refine-rounds",
        type=int,
        default=0,
        help="check-and-repair passes when the image differs from the plan (default 0; each pass "
        "writes OUT/refineN/)",
    )
    p.add_argument(
        "--sam",
        metavar="CHECKPOINT",
        help="segment refine's objects with SAM: a transformers SAM/SAM 2 folder or hub id, or a "
        "segment-anything .pth (vit_b:PATH when the name does not say; needs scenewright[sam]); "
        "default: the objects' attention maps",
    )
    p.add_argument(
        "--detector",
        metavar="CHECKPOINT",
        help="judge the image (and refine's rounds) with an OWLv2, Grounding DINO or Mask2Former "
        "folder or hub id; the embedded model keeps its exact evaluator",
    )
    p.add_argument(
        "--clip",
        metavar="CHECKPOINT",
        help="the CLIP that names colours for --detector (default openai/clip-vit-large-patch14)",
    )


def _precheck(args: argparse.Namespace) -> str:
    """Everything that can be refused before any weights load, refused now."""
    from scenewright.backends import ALIASES, resolve_backend
    from scenewright.backends.base import check_size
    from scenewright.backends.registry import resolve_device
    from scenewright.executor.sampler import check_guidance, check_seed, check_steps
    from scenewright.tools.output import check_output_folder

    prompt = args.prompt.strip()
    if not prompt:
        raise InvalidInputError(
            "prompt", "is empty", 'describe the image, e.g. "two red circles left of a blue square"'
        )
    if args.steps is not None:
        check_steps(args.steps)
    if args.guidance is not None:
        check_guidance(args.guidance)
    check_seed(args.seed)
    spec = ALIASES.get(args.backend.strip()) or resolve_backend(args.backend)
    if args.height is not None or args.width is not None:
        check_size(
            spec.name,
            spec.size_multiple,
            spec.min_size,
            args.height or spec.min_size,
            args.width or spec.min_size,
            spec.max_size,
        )
    resolve_backend(args.backend)
    resolve_device(args.device)
    check_output_folder(args.out)
    return prompt


class _Bar:
    """A tqdm bar that follows the agent's events (percent of the current node)."""

    def __init__(self, quiet: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=100, disable=quiet, file=sys.stderr, leave=False, bar_format="{desc} {bar} {n:.0f}%"
        )

    def __call__(self, event: dict[str, Any]) -> None:
        self.bar.set_description_str(f"{event.get('node', ''):>8}")
        self.bar.n = float(event.get("percent", 0.0))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def generate_command(args: argparse.Namespace) -> int:
    """One request to files in ``--out`` through the agent's graph."""
    from scenewright.agent.core import Agent
    from scenewright.tools.output import check_free

    prompt = _precheck(args)
    out_dir = Path(args.out)
    check_free([out_dir / name for name in OUTPUTS], args.overwrite)
    started = time.perf_counter()
    agent = Agent(
        backend=args.backend,
        planner=getattr(args, "planner", "rules"),
        strategy="auto",
        steps=args.steps,
        height=args.height,
        width=args.width,
        guidance=args.guidance,
        seed=args.seed,
        out_dir=out_dir,
        max_refine_rounds=max(0, getattr(args, "refine_rounds", 0)),
        device=args.device,
        dtype=args.dtype,
        negative_prompt=args.negative_prompt,
        cpu_offload=args.cpu_offload,
        flat_output=True,
        overwrite=args.overwrite,
        sam=getattr(args, "sam", None),
    )
    if getattr(args, "detector", None):
        from scenewright.agent.detection import attach_detector

        attach_detector(agent, args.detector, getattr(args, "clip", None), args.device)
    strategy = getattr(args, "strategy", "auto")
    if strategy != "auto":
        agent.set_strategy(strategy)
    bar = _Bar(args.quiet)
    try:
        result = agent.run(prompt, on_event=bar)
    finally:
        bar.close()
        agent.close()
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if result.status == "cancelled":
        print("interrupted: the render was cancelled; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not result.ok:
        raise ScenewrightError(result.errors[0] if result.errors else f"generate: {result.status}")
    for kind, path in result.paths.items():
        print(f"{kind + ':':<10} {path}")
    verdict = {True: "matches the plan", False: "differs from the plan", None: "not verified"}[
        result.verified
    ]
    print(
        f"done in {time.perf_counter() - started:.1f}s ({agent.backend_name}, {result.strategy}, "
        f"seed {result.seed}; {verdict})",
        file=sys.stderr,
    )
    return 0
