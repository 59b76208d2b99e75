"""The ``scenewright`` command line.

Every error caused by input or environment is one line on stderr and exit code 2; nothing the
user did can produce a traceback. Command modules load only when their command runs
(:mod:`scenewright.lazy_commands`), so ``--help`` never waits for torch.
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
from scenewright.agent.generate import register as register_generate
from scenewright.errors import ScenewrightError
from scenewright.lazy_commands import LazySubParsersAction, from_module
from scenewright.terminal import printable

EXIT_USAGE = 2

# name, one-line help (shown by `scenewright --help`), and what registers the real parser.
LAZY_COMMANDS = (
    ("rerender", "reproduce an image from the plan and settings in its PNG metadata",
     from_module("scenewright.agent.rerender")),
    ("plan", "turn a request into a plan: objects, counts, boxes, relations",
     from_module("scenewright.planner.command")),
    ("vocab", "the words the embedded model knows: shapes, colours, counts, relations, backgrounds",
     from_module("scenewright.agent.vocab_command")),
    ("strategies", "each strategy's options: meaning, range, default on each backend, and the presets",
     from_module("scenewright.executor.command")),
    ("chat", "a conversation in the terminal: requests and follow-ups", from_module("scenewright.agent.chat")),
    ("serve", "a web chat (Gradio) on 127.0.0.1", from_module("scenewright.agent.web")),
    ("bench", "benchmarks: toyworld (strategies), attention (speed), models (FLUX.1 / SD3.5 cost), reliability (hostile input), auto-table (what auto picks), concept-maps (map localisation)",
     from_module("scenewright.cli", "register_bench")),
    ("train-toyworld", "train the embedded toy-world model (resumes from OUT/checkpoint.pt if present)",
     from_module("scenewright.toyworld.command")),
    ("eval", "benchmarks on real models: geneval (render), geneval-score",
     from_module("scenewright.bench.geneval.command")),
    ("batch", "render many prompts (a text or JSONL file), one folder each",
     from_module("scenewright.bench.batch")),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scenewright",
        description="Compositional image generation: objects, counts and layouts that obey the prompt.",
    )
    parser.add_argument("--version", action="version", version=f"scenewright {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubParsersAction)
    assert isinstance(sub, LazySubParsersAction)
    register_generate(sub)
    for name, summary, loader in LAZY_COMMANDS:
        sub.add_lazy(name, summary, loader)
    return parser


def register_bench(sub: Any) -> None:
    """``scenewright bench`` and its four benchmarks."""
    from scenewright.bench import attention as bench_attention
    from scenewright.bench import auto_table as bench_auto_table
    from scenewright.bench import concept_maps as bench_concept_maps
    from scenewright.bench import models as bench_models
    from scenewright.bench import toyworld as bench_toyworld
    from scenewright.bench.reliability import run as bench_reliability

    bench = sub.add_parser(
        "bench",
        help="benchmarks: toyworld (strategies), attention (speed), models (FLUX.1 / SD3.5 cost), reliability (hostile input), auto-table (what auto picks), concept-maps (map localisation)",
    )
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    bench_toyworld.register(bench_sub)
    bench_attention.register(bench_sub)
    bench_models.register(bench_sub)
    bench_reliability.register(bench_sub)
    bench_auto_table.register(bench_sub)
    bench_concept_maps.register(bench_sub)


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
    except BrokenPipeError:  # `scenewright plan ... | head`: the reader left, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
