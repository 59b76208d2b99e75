"""The ``scenewright`` command line.

Every error caused by input or environment is one line on stderr and exit code 2; nothing the
user did can produce a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

# Library chatter (e.g. transformers noting that torchvision is absent) is not for our users; it
# must be silenced before those libraries are first imported.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from scenewright import __version__
from scenewright.agent import chat as agent_chat
from scenewright.agent import web as agent_web
from scenewright.agent.generate import add_generate_options, generate_command
from scenewright.backends.offload import OFFLOAD_MODES
from scenewright.bench import attention as bench_attention
from scenewright.bench import batch as batch_command
from scenewright.bench import models as bench_models
from scenewright.bench import toyworld as bench_toyworld
from scenewright.bench.geneval import command as geneval_command
from scenewright.errors import ScenewrightError
from scenewright.planner import command as plan_command
from scenewright.terminal import printable
from scenewright.toyworld import command as toyworld_command

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
    p.add_argument(
        "--cpu-offload", nargs="?", const="model", choices=OFFLOAD_MODES, default=None,
        help="keep weights on the CPU: 'model' (the default when given) moves each model to the GPU while it "
        "runs; 'sequential' streams layer by layer (slow, for cards smaller than the transformer)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_generate_options(p)
    p.set_defaults(handler=generate_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenewright",
        description="Compositional image generation: objects, counts and layouts that obey the prompt.",
    )
    parser.add_argument("--version", action="version", version=f"scenewright {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Command modules import nothing heavy at module level: `scenewright --help` stays fast.
    _add_generate(sub)
    plan_command.register(sub)
    agent_chat.register(sub)
    agent_web.register(sub)
    _add_bench(sub)
    toyworld_command.register(sub)
    geneval_command.register(sub)
    batch_command.register(sub)
    return parser


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench", help="benchmarks: toyworld (strategies), attention (speed), models (FLUX.1 / SD3.5 cost)"
    )
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    bench_toyworld.register(bench_sub)
    bench_attention.register(bench_sub)
    bench_models.register(bench_sub)


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
        print(printable(f"error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
