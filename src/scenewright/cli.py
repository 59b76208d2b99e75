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

# torchao (the --quantize torchao-int8 extra), imported by diffusers when installed, logs the
# CUDA kernels a CPU build cannot load, and registers enums that torch's pytree logs about.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

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
    ("bench", "benchmarks: toyworld (strategies), attention (speed), models (FLUX.1 / SD3.5 cost), reliability (hostile input), auto-table (what auto picks), concept-maps (map localisation), object-lora (a LoRA on one object)",
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


# Each benchmark's module loads only when that benchmark is chosen, as the commands' do.
BENCHMARKS = (
    ("toyworld", "strategies on toy-world prompt sets, judged by the exact evaluator",
     from_module("scenewright.bench.toyworld")),
    ("attention", "per-step time and memory of regional vs vanilla attention",
     from_module("scenewright.bench.attention")),
    ("models", "time and memory of every strategy vs the diffusers pipeline on FLUX.1 / SD3.5 geometries",
     from_module("scenewright.bench.models")),
    ("reliability", "hostile cases on every face, tabulated by outcome",
     from_module("scenewright.bench.reliability.run")),
    ("auto-table", "measure the strategies per kind of plan and write the table auto picks from",
     from_module("scenewright.bench.auto_table")),
    ("concept-maps", "how well the attention maps localise each object (inside its box vs outside)",
     from_module("scenewright.bench.concept_maps")),
    ("object-lora", "a shipped toy LoRA bound to one object vs the whole image, by the exact evaluator",
     from_module("scenewright.bench.object_lora")),
)  # fmt: skip


def register_bench(sub: Any) -> None:
    """``scenewright bench`` and its benchmarks (placeholders until one is chosen)."""
    bench = sub.add_parser(
        "bench",
        help="benchmarks: toyworld (strategies), attention (speed), models (FLUX.1 / SD3.5 cost), reliability (hostile input), auto-table (what auto picks), concept-maps (map localisation), object-lora (a LoRA on one object)",
    )
    bench_sub = bench.add_subparsers(
        dest="bench", metavar="BENCHMARK", required=True, action=LazySubParsersAction
    )
    for name, summary, loader in BENCHMARKS:
        bench_sub.add_lazy(name, summary, loader)


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
