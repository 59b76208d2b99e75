"""The CLI starts without torch: help and argument parsing never import the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_every_help_imports_no_heavy_library() -> None:
    """Every command's and every benchmark's ``--help``, in one interpreter: none loads torch,
    diffusers, transformers, Gradio or LangGraph (the measured cause of 10 s help screens)."""
    helps = [["--help"], ["generate", "--help"]]
    helps += [[name, "--help"] for name, _summary, _loader in cli.LAZY_COMMANDS]
    helps += [["bench", name, "--help"] for name, _summary, _loader in cli.BENCHMARKS]
    helps += [["eval", "geneval", "--help"], ["eval", "geneval-score", "--help"]]
    code = (
        "import contextlib, io, json, sys\n"
        "from scenewright.cli import main\n"
        "shown = []\n"
        f"for argv in {helps!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    shown.append(out.getvalue())\n"
        f"print(json.dumps([shown, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shown, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == []
    for argv, text in zip(helps, shown, strict=True):
        assert text.startswith("usage: scenewright"), argv


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


# A bad argument that needs no model, and the start of the one line that refuses it.
BAD_ARGUMENTS = [
    (["--seed", "-5"], "error: seed: -"),  # eval geneval names its last sample's seed, -2
    (["--steps", "0"], "error: steps: 0 is outside 1..1000"),
    (["--height", "7"], "error: height: 7 cannot be taken by backend 'tiny'"),
    (["--guidance", "nan"], "error: guidance: nan is not a finite number"),
    (["--strategy", "nope"], "error: strategy: unknown strategy 'nope'"),
    (["--strategy", "regional:nope=1"], "error: strategy: 'regional:nope=1' has no option 'nope=1'"),
    (["--strategy", "stitch:fill=-1"], "error: strategy: option fill of 'stitch:fill=-1' is -1.0"),
    (["--device", "mps"], "error: device: 'mps' is not supported"),
]


def _refusals(head: list[str], out_file: str) -> list[dict[str, object]]:
    """Run ``head`` + each bad argument (and ``--out`` at an existing file) in one fresh
    interpreter; per case, the exit code, stderr, and the heavy modules imported so far."""
    cases = [[*head, "--out", out_file + ".d", *bad] for bad, _ in BAD_ARGUMENTS]
    cases.append([*head, "--out", out_file])
    code = (
        "import contextlib, io, json, sys\n"
        "from scenewright.cli import main\n"
        "found = []\n"
        f"for argv in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            code = main(argv)\n"
        "        except SystemExit as stop:\n"
        "            code = stop.code\n"
        f"    found.append({{'code': code, 'err': err.getvalue(), 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}})\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "head",
    [["generate", "a red circle"], ["batch", "PROMPTS"], ["eval", "geneval", "METADATA"]],
    ids=["generate", "batch", "eval-geneval"],
)
def test_bad_arguments_are_refused_before_torch_loads(head: list[str], tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n")
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text(json.dumps({"tag": "single_object", "include": [{"class": "circle", "count": 1}],
                                    "prompt": "a photo of a circle"}) + "\n")  # fmt: skip
    head = [{"PROMPTS": str(prompts), "METADATA": str(metadata)}.get(word, word) for word in head]
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    found = _refusals(head, str(taken))
    expected = [line for _, line in BAD_ARGUMENTS] + ["error: out: "]
    for (argv, _), result in zip([*BAD_ARGUMENTS, (["--out", "FILE"], "")], found, strict=True):
        assert result["code"] == 2, (argv, result)
        err = str(result["err"])
        assert len(err.strip().splitlines()) == 1, (argv, err)
        assert result["heavy"] == [], (argv, result["heavy"])
    for want, result in zip(expected, found, strict=True):
        assert str(result["err"]).startswith(want), (want, result["err"])
    assert not (tmp_path / "taken.d").exists()  # nothing was written for a refused run
