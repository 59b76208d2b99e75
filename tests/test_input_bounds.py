"""Bounds refused before any work: one line, exit code 2, the field and the fix; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenewright.cli import main


def _generate(tmp_path: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["generate", "a red circle", "--out", out if out is not None else str(tmp_path / "o"), "--quiet",
            "--strategy", "vanilla", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        (["--steps", "100000"], "steps:", "--steps 20 to 50"),
        (["--guidance", "nan"], "guidance:", "--guidance 0 or more"),
        (["--guidance", "inf"], "guidance:", "--guidance 0 or more"),
        (["--seed", str(2**64)], "seed:", "2**63"),
        (["--seed", "-2"], "seed:", "2**63), or -1 for a random one"),
        (["--height", "100000"], "height:", "(at most 128); use --height 128 or less"),
        (["--width", "1024"], "width:", "--width 128 or less"),  # the 64 px model at 1024: refused
        (["--device", "tpu"], "device:", "--device cpu"),
        (["--device", "cuda"], "device:", "--device cpu"),  # CPU-only torch here (CI has no GPU)
    ],
)
def test_generate_refuses_out_of_range_values_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], field: str, fix: str
) -> None:
    import torch

    if extra[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(_generate(tmp_path, *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {field}") and fix in err
    assert not (tmp_path / "o").exists()


def test_generate_refuses_output_folders_it_cannot_write_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    for out, problem in [
        ("", "out: is empty"),
        (str(a_file), "is a file"),
        (str(a_file / "under"), "is a file, so"),
        ("/proc/scenewright-out", "cannot write in /proc"),
    ]:
        code = main(_generate(tmp_path, out=out))
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and problem in err, (out, err)
    assert a_file.read_text() == "x"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("stitch:fill=-1", "option fill of 'stitch:fill=-1' is -1.0, outside [0.05, 1]"),
        ("stitch:object_steps=-3", "option object_steps of 'stitch' was removed"),
        ("stitch:placement=wherever", "option placement of 'stitch' was removed"),
        ("stitch:preset=nope", "names no shipped preset 'nope'; use one of"),
        ("stitch:mode=paper:preset=tiny16", "asks for no tuning (mode=paper) and a preset"),
        ("regional:base_ratio=2", "outside [0, 1]"),
        ("regional:inject_fraction=-0.5", "outside [0, 1]"),
        ("regional:base_ratio=nan", "outside [0, 1]"),
        ("taca:gamma=0", "outside [0.5, 2]"),
        ("numina:reference_fraction=0", "outside [0.05, 1]"),
        ("refine:rounds=-1", "outside [0, 10]"),
        ("refine:verifier=judge", "use one of auto, attention, evaluator"),
        ("refine:base=refine", "refine cannot refine its own output"),
        ("refine:base=bogus", "unknown strategy 'bogus'"),
        ("stitch+taca:fill=2", "outside [0.05, 1]"),
    ],
)
def test_strategy_options_are_checked_against_their_declared_ranges(name: str, message: str) -> None:
    from scenewright.errors import InvalidInputError
    from scenewright.executor.strategies import get_strategy, parse_options

    function, _ = get_strategy(name)
    with pytest.raises(InvalidInputError, match="strategy") as raised:
        parse_options(function, name, name.partition(":")[2])
    assert message in str(raised.value)


def test_every_declared_option_is_a_real_parameter_and_its_default_is_in_range() -> None:
    import inspect

    from scenewright.executor.strategies import OPTION_BOUNDS, STRATEGIES

    for name, bounds in OPTION_BOUNDS.items():
        parameters = inspect.signature(STRATEGIES[name]).parameters
        for key, bound in bounds.items():
            assert key in parameters, (name, key)
            bound.check(name, key, parameters[key].default)  # the default itself passes


def test_generate_refuses_a_bad_strategy_option_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "two red circles left of a blue square", "--out", str(tmp_path / "o"), "--quiet",
            "--strategy", "stitch:fill=-1"]  # fmt: skip
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "outside [0.05, 1]" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "image.png").exists()


def test_agent_api_refuses_bad_arguments_with_typed_errors(tmp_path: Path) -> None:
    """run(None), an unknown strategy and a bad seed are the caller's errors, raised before any
    node runs: no AttributeError from deep in the graph, no quiet fallback to vanilla."""
    from scenewright import Agent
    from scenewright.errors import InvalidInputError

    agent = Agent(steps=2, out_dir=tmp_path / "out")
    for call, field in [
        (lambda: agent.run(None), "prompt"),  # type: ignore[arg-type]
        (lambda: agent.run("a red circle", strategy="bogus"), "strategy"),
        (lambda: agent.run("a red circle", strategy="stitch:fill=-1"), "strategy: option fill"),
        (lambda: agent.run("a red circle", seed=-2), "seed"),
        (lambda: agent.render_plan({"prompt": "a red circle", "objects": []}, strategy="bogus"), "strategy"),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert str(caught.value).startswith(field), (field, str(caught.value))
    assert not (tmp_path / "out").exists()


def test_a_history_that_is_not_a_history_file_is_refused_before_the_first_turn(tmp_path: Path) -> None:
    from scenewright import Agent
    from scenewright.errors import InvalidInputError

    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"not a database" * 100)
    for path, problem in [(corrupt, "not a usable history file"), (tmp_path, "is a folder")]:
        with pytest.raises(InvalidInputError) as caught:
            Agent(history=path, out_dir=tmp_path / "out")
        assert str(caught.value).startswith("history: ") and problem in str(caught.value)
    assert corrupt.read_bytes() == b"not a database" * 100  # the user's file is left as it was


def test_an_edited_plan_without_objects_is_refused_by_field(tmp_path: Path) -> None:
    from scenewright import Agent

    agent = Agent(steps=2, out_dir=tmp_path / "out", strategy="vanilla", max_refine_rounds=0)
    result = agent.render_plan({"prompt": "a yellow star above a purple heart", "objects": []})
    assert result.status == "invalid" and result.errors[0].startswith("objects: is empty")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_llm_timeout_is_an_option_of_every_face_and_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code = main([command, *(["a red circle"] if command == "generate" else []), "--planner", "llm",
                 "--llm-timeout", "0", "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: llm-timeout: 0.0 is not a positive number of seconds"), err


def test_the_wait_for_an_llm_is_announced_with_its_bound(tmp_path: Path) -> None:
    from scenewright import Agent
    from scenewright.planner.llm import LLMSettings

    settings = LLMSettings(model="m", base_url="http://127.0.0.1:9/v1", api_key="k", timeout=4.0, backoff=0.0)
    agent = Agent(
        steps=2, out_dir=tmp_path / "out", planner="llm", llm_settings=settings, max_refine_rounds=0
    )
    events: list[dict[str, object]] = []
    result = agent.run("a red circle", on_event=events.append)
    assert result.status == "done" and any("LLM" in n for n in result.notes)  # the rules planner took over
    said = [str(e["message"]) for e in events if str(e.get("message", "")).startswith("asking the LLM")]
    assert said == ["asking the LLM (up to 8 s without an answer, then the rules planner)"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["generate", "a red circle", "--refine-rounds", "-3"], "refine-rounds: -3 is outside 0..8"),
        (["generate", "a red circle", "--refine-rounds", "1000"], "refine-rounds: 1000 is outside 0..8"),
        (["generate", "a red circle", "--height", "0"], "height: 0 cannot be taken"),
        (["generate", "a red circle", "--negative-prompt", "x" * 3000], "negative-prompt: is 3,000 characters"),
        (["chat", "--refine-rounds", "-3"], "refine-rounds: -3 is outside"),
        (["chat", "--thread", ""], "thread_id: is empty"),
        (["batch", "{tmp}/p.txt", "--out", "{tmp}/b", "--num-processes", "100000"], "num-processes: 100000"),
        (["eval", "geneval", "{tmp}/m.jsonl", "--out", "{tmp}/g", "--n-samples", "100000000"],
         "n-samples: 100000000 is outside 1..100"),
        (["eval", "geneval", "{tmp}/m.jsonl", "--out", "{tmp}/g", "--seed", str(2**63 - 2), "--n-samples", "4"],
         "seed: "),
        (["batch", "{tmp}/many.txt", "--out", "{tmp}/b"], "holds 100,001 prompts (at most 100,000)"),
    ],
)  # fmt: skip
def test_every_count_and_size_has_an_upper_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    (tmp_path / "p.txt").write_text("a red circle\n")
    (tmp_path / "many.txt").write_text("a red circle\n" * 100_001)
    line = {"tag": "single_object", "prompt": "a photo of a cat", "include": [{"class": "cat", "count": 1}]}
    (tmp_path / "m.jsonl").write_text(json.dumps(line) + "\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] in ("generate", "chat"):
        argv += ["--out", str(tmp_path / "o")]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "g").exists()


def test_deep_json_lines_are_one_line_errors_on_batch_and_geneval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = '{"prompt": "a red circle", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    (tmp_path / "p.jsonl").write_text(deep + "\n")
    for argv in (["batch", str(tmp_path / "p.jsonl")], ["eval", "geneval", str(tmp_path / "p.jsonl")]):
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "line 1: is nested more than 32 levels" in err, err
    assert not (tmp_path / "o").exists()


def test_the_catalogue_holds_each_strategy_functions_options_and_defaults() -> None:
    """The torch-free catalogue, which parses strategy strings, names exactly the options each
    strategy function takes (int, float and str defaults), with the same defaults and types."""
    import inspect

    from scenewright.executor.catalogue import OPTIONS, strategy_names
    from scenewright.executor.strategies import STRATEGIES

    assert list(OPTIONS) == list(STRATEGIES)
    assert "stitch+taca" in strategy_names()
    for name, function in STRATEGIES.items():
        taken = {
            key: p.default
            for key, p in inspect.signature(function).parameters.items()
            if isinstance(p.default, (int, float, str)) and not isinstance(p.default, bool)
        }
        declared = {key: option.default for key, option in OPTIONS[name].items()}
        assert declared == taken, name
        assert {k: type(v) for k, v in declared.items()} == {k: type(v) for k, v in taken.items()}, name


@pytest.mark.parametrize(
    "value", ["cpu", "cpu:0", "cuda", "cuda:3", "mps", "meta", "foo", "CPU", "cuda:", "cuda:x"]
)
def test_device_names_are_refused_without_torch_as_torch_refuses_them(value: str) -> None:
    from scenewright.backends.registry import resolve_device
    from scenewright.backends.specs import check_device_name
    from scenewright.errors import InvalidInputError

    try:
        check_device_name(value)
    except InvalidInputError as quick:
        with pytest.raises(InvalidInputError) as full:
            resolve_device(value)
        assert str(full.value) == str(quick)
        return
    try:
        resolve_device(value)  # a well-formed name: at most this machine lacks it
    except InvalidInputError as error:
        assert "CUDA" in str(error) or "does not exist" in str(error)
