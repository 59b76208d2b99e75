"""The ``scenewright`` command line.

Every error caused by input or environment is one line on stderr and exit code 2; nothing the
user did can produce a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scenewright import __version__
from scenewright.errors import InvalidInputError, ScenewrightError

EXIT_USAGE = 2


def _add_generate(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--cpu-offload", action="store_true", help="keep weights on the CPU until each model runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=generate_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenewright",
        description="Compositional image generation: objects, counts and layouts that obey the prompt.",
    )
    parser.add_argument("--version", action="version", version=f"scenewright {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_generate(sub)
    from scenewright.toyworld import command as toyworld_command

    toyworld_command.register(sub)
    from scenewright.planner import command as plan_command

    plan_command.register(sub)
    _add_bench(sub)
    return parser


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from scenewright.bench import toyworld as bench_toyworld

    bench = sub.add_parser("bench", help="benchmarks: toyworld (strategies), attention (speed)")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    bench_toyworld.register(bench_sub)


def _check_prompt(prompt: str) -> str:
    prompt = prompt.strip()
    if not prompt:
        raise InvalidInputError(
            "prompt", "is empty", 'describe the image, e.g. "two red circles left of a blue square"'
        )
    return prompt


def generate_command(args: argparse.Namespace) -> int:
    from scenewright.backends import ALIASES, load_backend, resolve_backend
    from scenewright.backends.base import check_size
    from scenewright.executor.sampler import SamplingSettings
    from scenewright.executor.vanilla import render_vanilla
    from scenewright.planner.plan import Plan
    from scenewright.tools.output import check_free, save_json, save_png

    prompt = _check_prompt(args.prompt)
    if args.steps is not None and args.steps < 1:
        raise InvalidInputError(
            "steps", f"{args.steps} is not a positive step count", "use --steps 1 or more"
        )
    # Sizes of named backends are known before their weights are looked up: check them first.
    spec = ALIASES.get(args.backend.strip()) or resolve_backend(args.backend)
    if args.height is not None or args.width is not None:
        check_size(
            spec.name,
            spec.size_multiple,
            spec.min_size,
            args.height or spec.min_size,
            args.width or spec.min_size,
        )
    spec = resolve_backend(args.backend)
    out_dir = Path(args.out)
    image_path, plan_path = out_dir / "image.png", out_dir / "plan.json"
    check_free([image_path, plan_path], args.overwrite)

    started = time.perf_counter()
    backend = load_backend(spec, device=args.device, dtype=args.dtype, cpu_offload=args.cpu_offload)
    unknown: list[str] = getattr(backend, "unknown_words", lambda _p: [])(prompt)
    if unknown:
        _warn(f"the {backend.name} model does not know the words {', '.join(unknown)}; they are ignored")
    defaults = backend.defaults
    settings = SamplingSettings(
        height=args.height or defaults.height,
        width=args.width or defaults.width,
        steps=args.steps or defaults.steps,
        guidance=defaults.guidance if args.guidance is None else args.guidance,
        seed=args.seed,
        negative_prompt=args.negative_prompt,
    )
    settings.validate(backend)
    plan = Plan.from_prompt(prompt)
    result = render_vanilla(backend, plan, settings, progress=not args.quiet)
    metadata: dict[str, Any] = {
        "version": __version__,
        "plan": plan.model_dump(mode="json"),
        "settings": asdict(settings),
        "backend": backend.describe(),
        "strategy": result.strategy,
    }
    written_image = save_png(result.image, image_path, metadata, args.overwrite)
    written_plan = save_json(plan.model_dump(mode="json"), plan_path, args.overwrite)
    elapsed = time.perf_counter() - started
    print(f"image: {written_image}")
    print(f"plan:  {written_plan}")
    print(
        f"done in {elapsed:.1f}s ({backend.name}, {settings.steps} steps, seed {settings.seed})",
        file=sys.stderr,
    )
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _quiet_libraries() -> None:
    for name in ("diffusers", "transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if "scenewright" in filename:
            _warn(str(message))

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    # Library chatter (e.g. transformers noting that torchvision is absent) is not for our users.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _quiet_libraries()
    try:
        code: int = args.handler(args)
        return code
    except ScenewrightError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
