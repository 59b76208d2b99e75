"""The CLI starts without torch: help and argument parsing never import the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scenewright import cli

HEAVY = ("torch", "diffusers", "transformers", "gradio", "langgraph")


def _modules_after(argv: list[str]) -> tuple[list[str], str]:
    """Run ``main(argv)`` in a fresh interpreter; the heavy modules it imported, and its stdout."""
    code = (
        "import json, sys\n"
        "from scenewright.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *shown, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(shown)


@pytest.mark.parametrize(
    "argv", [["--help"], ["generate", "--help"], ["plan", "--help"], ["train-toyworld", "--help"]]
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    heavy, shown = _modules_after(argv)
    assert heavy == []
    assert "usage: scenewright" in shown


def test_top_level_help_lists_every_command() -> None:
    _, shown = _modules_after(["--help"])
    for name, _summary, _loader in cli.LAZY_COMMANDS:
        assert f"    {name}" in shown
    assert "    generate" in shown


def test_every_lazy_command_registers_its_real_parser() -> None:
    """Each placeholder is replaced by its module's parser, which sets a handler (or sub-commands)."""
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, cli.LazySubParsersAction))
    order = [a.dest for a in action._choices_actions]
    for name, _summary, _loader in cli.LAZY_COMMANDS:
        real = action.load(name)
        assert real.prog == f"scenewright {name}"
        assert real.get_default("handler") is not None or real._subparsers is not None
    assert [a.dest for a in action._choices_actions] == order  # help keeps its order


def test_a_lazy_command_parses_after_loading() -> None:
    args = cli.build_parser().parse_args(["plan", "a red circle", "--json"])
    assert args.prompt == "a red circle" and args.json and callable(args.handler)


def test_offload_modes_match_the_backend() -> None:
    from scenewright.agent.generate import OFFLOAD_MODES
    from scenewright.backends.offload import OFFLOAD_MODES as BACKEND_MODES

    assert OFFLOAD_MODES == BACKEND_MODES
