"""Issue 17 item 5: property-based tests of every way input reaches scenewright.

Hypothesis generates command lines, plan JSON (the web editor's render and chat's ``/load``),
replies of an OpenAI-compatible server, and sets of concurrent requests. Whatever it generates,
each case must end, in a bounded time, in a result or a one-line typed error, and no finished
image or history turn may be lost.

CI runs a few hundred derandomised examples (the same ones every run, so CI cannot flake on a new
example); ``make test-slow`` runs the ``_many`` variants with ten times as many random ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import string
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fake_openai_server import FakeOpenAI, Step
from scenewright import Agent
from scenewright.agent.chat import run_chat
from scenewright.agent.core import AgentResult
from scenewright.cli import main
from scenewright.planner import MAX_OBJECTS, Plan
from scenewright.planner.llm import LLMPlanner, LLMSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A case that has not ended after this long is a hang (renders here take well under a second).
CASE_LIMIT_S = 120.0
_COMMON = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
CI = settings(derandomize=True, **_COMMON)  # type: ignore[arg-type]
SLOW = settings(derandomize=False, **_COMMON)  # type: ignore[arg-type]
PROMPTS = [
    "a red circle",
    "two red circles left of a blue square",
    "three green triangles",
    "a yellow star above a purple heart",
]


def _bounded(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread; a case that does not end within CASE_LIMIT_S fails as a hang."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as error:  # re-raised in the test's thread, with its traceback
            box["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(CASE_LIMIT_S)
    assert not worker.is_alive(), f"hang: the case ran past {CASE_LIMIT_S:.0f} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _one_line_error(text: str) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text


# ------------------------------------------------------------------------------ command lines
_FLAG_VALUES: dict[str, st.SearchStrategy[str]] = {
    "--steps": st.sampled_from(["1", "2", "3", "0", "-4", "100000", "2.5", "x", ""]),
    "--height": st.sampled_from(["64", "32", "0", "-64", "65", "100000", "abc"]),
    "--width": st.sampled_from(["64", "48", "0", "1024", "nan"]),
    "--seed": st.sampled_from(["0", "7", "-1", str(2**63), str(2**64), "1e3", "0x10"]),
    "--guidance": st.sampled_from(["1", "3.5", "0", "-1", "nan", "inf", "1e308", "x"]),
    "--strategy": st.sampled_from(
        [
            "vanilla",
            "regional",
            "stitch",
            "taca",
            "numina",
            "bogus",
            "",
            "stitch:fill=-1",
            "regional:base_ratio=2",
            "regional:inject_fraction=-0.5",
            "stitch:object_steps=-3",
            "refine:rounds=-1",
            "regional:base_ratio=0.3",
            "stitch:",
            "vanilla:x=1",
            "regional:base_ratio",
        ]
    ),
    "--refine-rounds": st.sampled_from(["0", "1", "-1", "99999", "one"]),
    "--device": st.sampled_from(["cpu", "tpu", "cuda", "cuda:7", "", "meta"]),
    "--dtype": st.sampled_from(["auto", "float32", "float64", "int8", "bfloat16"]),
    "--planner": st.sampled_from(["rules", "magic"]),
    "--backend": st.sampled_from(["tiny", "no-such-model", "/nonexistent/folder"]),
}
_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(string.ascii_letters + string.digits + " ,.-")), st.characters(codec="utf-8")
    ),
    max_size=60,
)
_prompt = st.one_of(st.sampled_from([*PROMPTS, "no cats", "-3 circles", "2.5 circles", "\x1b[31mred\x1b[0m circle", ""]), _text)  # fmt: skip


@st.composite
def generate_argv(draw: st.DrawFn) -> list[str]:
    """A ``generate`` command line: a prompt and a handful of flags, most of them odd."""
    flags = draw(st.lists(st.sampled_from(sorted(_FLAG_VALUES)), max_size=4, unique=True))
    argv = ["generate", draw(_prompt)]
    for flag in flags:
        argv += [flag, draw(_FLAG_VALUES[flag])]
    steps = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--steps"]
    if not steps:  # renders stay short: at most 3 steps unless the case is about --steps
        argv += ["--steps", "2"]
    return argv


def _cli_case(argv: list[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="sw-prop-"))
    try:
        out = root / "out"
        previous = root / "previous.png"  # a finished image beside the output: never touched
        previous.write_bytes(b"\x89PNG finished image")
        full = [*argv, "--out", str(out), "--quiet", "--refine-rounds", "0"]
        if "--refine-rounds" in argv:
            full = [*argv, "--out", str(out), "--quiet"]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = _bounded(lambda: main(full))
            except SystemExit as exit_:  # argparse: a usage line and its error line, exit 2
                code = exit_.code
                assert code == 2 and "Traceback" not in stderr.getvalue(), stderr.getvalue()
                return
        text = stderr.getvalue()
        event(f"exit {code}")
        assert code in (0, 2), (full, code, text)
        assert "Traceback" not in text
        if code == 2:
            _one_line_error([line for line in text.splitlines() if not line.startswith("warning:")][-1])
            assert not (out / "image.png").exists()
        else:
            assert (out / "image.png").is_file() and (out / "plan.json").is_file(), full
            Plan.model_validate_json((out / "plan.json").read_text())
        assert previous.read_bytes() == b"\x89PNG finished image"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(CI, max_examples=80)
@given(generate_argv())
def test_any_generate_command_line_ends_in_an_image_or_one_line_error(argv: list[str]) -> None:
    _cli_case(argv)


@pytest.mark.slow
@settings(SLOW, max_examples=800)
@given(generate_argv())
def test_any_generate_command_line_many(argv: list[str]) -> None:
    _cli_case(argv)


# --------------------------------------------------------------------- plans (web editor, /load)
_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), _text,
)  # fmt: skip
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)
_box = st.one_of(
    st.lists(st.floats(min_value=-0.5, max_value=1.5), min_size=4, max_size=4),
    st.lists(st.sampled_from([0.1, 0.5, 0.9, float("nan"), 1e9]), min_size=0, max_size=5),
    _json,
)
_object = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["circle", "square", "triangle", "star", "heart"]), _text, _json)},
    optional={
        "count": st.one_of(st.integers(min_value=-3, max_value=40), st.floats(), _text),
        "attributes": st.one_of(st.lists(st.sampled_from(["red", "blue", "green", "huge"]), max_size=3), _json),
        "prompt": st.one_of(_text, st.just("red circle")),
        "boxes": st.one_of(st.lists(_box, max_size=4), _json),
    },
)  # fmt: skip
_plan_dict = st.fixed_dictionaries(
    {"objects": st.one_of(st.lists(_object, max_size=MAX_OBJECTS + 3), _json)},
    optional={
        "prompt": st.one_of(st.sampled_from(PROMPTS), _text, _json),
        "global_prompt": st.one_of(_text, _json),
        "background": st.one_of(st.none(), st.sampled_from(["night", "white", "mars"]), _json),
        "relations": st.one_of(
            st.lists(st.fixed_dictionaries({"subject": st.integers(-1, 12), "object": st.integers(-1, 12),
                                             "relation": st.sampled_from(["left of", "above", "inside", ""])}),
                     max_size=3),
            _json,
        ),
    },
)  # fmt: skip
_shape = st.sampled_from(["circle", "square", "triangle", "star", "heart", "ring"])
_colour = st.sampled_from(["red", "blue", "green", "yellow", "purple"])
_unit = st.floats(min_value=0.0, max_value=1.0)
_sane_object = st.builds(
    lambda name, count, colours, boxes: {
        "name": name, "count": count, "attributes": colours,
        "prompt": " ".join([*colours, name]), **({"boxes": boxes[:count]} if boxes else {}),
    },
    _shape, st.integers(1, 4), st.lists(_colour, max_size=1),
    st.one_of(st.none(), st.lists(st.lists(_unit, min_size=4, max_size=4), min_size=4, max_size=4)),
)  # fmt: skip
_sane_plan = st.builds(
    lambda objects, background, relation: {
        "prompt": " and ".join(o["prompt"] for o in objects),
        "objects": objects, "background": background,
        "relations": [{"subject": 0, "relation": relation, "object": 1}] if relation and len(objects) > 1 else [],
    },
    st.lists(_sane_object, min_size=1, max_size=4), st.sampled_from([None, "night", "white"]),
    st.sampled_from([None, "left of", "above", "right of"]),
)  # fmt: skip
_plan_text = st.one_of(
    _sane_plan.map(json.dumps),
    _plan_dict.map(lambda d: json.dumps(d, allow_nan=True)),
    _json.map(lambda v: json.dumps(v, allow_nan=True)),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


class _Thread:
    """One agent thread with a first good turn: every later plan must keep that turn's image."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sw-plans-"))
        self.agent = Agent(steps=2, max_refine_rounds=0, strategy="vanilla", out_dir=self.root / "out")
        first = self.agent.run(PROMPTS[0])
        assert first.status == "done", first.summary()
        self.first_image = Path(first.paths["image"])
        self.first_bytes = self.first_image.read_bytes()
        self.last_good: np.ndarray = np.asarray(first.image)


@pytest.fixture(scope="module")
def plan_thread() -> Iterator[_Thread]:
    thread = _Thread()
    yield thread
    shutil.rmtree(thread.root, ignore_errors=True)


def _plan_case(thread: _Thread, text: str) -> None:
    result: AgentResult = _bounded(lambda: thread.agent.render_plan(text))
    event(f"plan {result.status}")
    assert result.status in ("done", "invalid", "failed"), result.summary()
    if result.status == "done":
        thread.last_good = np.asarray(result.image)
        assert result.plan is not None and 1 <= len(result.plan.objects) <= MAX_OBJECTS
        assert Path(result.paths["image"]).is_file()
    else:
        assert result.errors, result.summary()
        for error in result.errors:
            assert "\n" not in error and "Traceback" not in error and len(error) < 2_000, error
        assert result.image is not None  # the last good image is still shown
        assert np.array_equal(np.asarray(result.image), thread.last_good)
    assert thread.first_image.read_bytes() == thread.first_bytes  # the first turn's image is kept


@settings(CI, max_examples=150)
@given(text=_plan_text)
def test_any_edited_plan_renders_or_is_refused_by_field(plan_thread: _Thread, text: str) -> None:
    _plan_case(plan_thread, text)


@pytest.mark.slow
@settings(SLOW, max_examples=1500)
@given(text=_plan_text)
def test_any_edited_plan_many(plan_thread: _Thread, text: str) -> None:
    _plan_case(plan_thread, text)


def _load_case(thread: _Thread, content: bytes) -> None:
    """``/load`` of any file in the chat, then ``/plan``: the chat answers both and goes on."""
    path = thread.root / "loaded.json"
    path.write_bytes(content)
    stdout, stderr = io.StringIO(), io.StringIO()
    script = io.StringIO(f"/load {path}\n/plan\n/quit\n")
    code = _bounded(lambda: run_chat(thread.agent, script, stdout, stderr, progress=False))
    said = stdout.getvalue()
    assert code in (0, 2) and "Traceback" not in said + stderr.getvalue()
    replies = said.splitlines()[1:]  # after the greeting: the /load answer, then the /plan one
    assert replies and ("no plan yet" in said or '"objects"' in said), said
    if code == 2:
        assert any(line.startswith("error: ") for line in replies), said
    assert thread.first_image.read_bytes() == thread.first_bytes


@settings(CI, max_examples=40)
@given(content=st.one_of(_plan_text.map(str.encode), st.binary(max_size=300)))
def test_any_file_given_to_load_leaves_the_chat_running(plan_thread: _Thread, content: bytes) -> None:
    _load_case(plan_thread, content)


# ---------------------------------------------------------------------------------- LLM replies
GOOD_REPLY: dict[str, Any] = {
    "prompt": PROMPTS[1],
    "global_prompt": "two red circles to the left of a blue square",
    "objects": [
        {"name": "circle", "count": 2, "attributes": ["red"], "prompt": "red circle"},
        {"name": "square", "count": 1, "attributes": ["blue"], "prompt": "blue square"},
    ],
    "relations": [{"subject": 0, "relation": "left of", "object": 1}],
}


def _fenced(text: str) -> str:
    return f"Here is the plan:\n```json\n{text}\n```\nHope it helps."


_reply = st.one_of(
    _plan_dict.map(lambda d: json.dumps({**GOOD_REPLY, **d}, allow_nan=True)),
    _plan_dict.map(lambda d: _fenced(json.dumps(d, allow_nan=True))),
    _json.map(lambda v: json.dumps(v, allow_nan=True)),
    _text,
    st.just(json.dumps(GOOD_REPLY)),
)
_step = st.one_of(
    _reply.map(lambda content: Step(content)),
    st.sampled_from([Step(status=500), Step(status=429, retry_after="0"), Step(status=400)]),
)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:  # one server for every example: stopping one takes 0.5 s
        yield server


def _llm_case(server: FakeOpenAI, steps: list[Step]) -> None:
    server.script, server.requests[:], server.paths[:] = list(steps), [], []
    settings_ = LLMSettings(
        model="fake-model", base_url=server.base_url, api_key="k", timeout=5.0, backoff=0.0,
        sleep=lambda _s: None,
    )  # fmt: skip
    result = _bounded(lambda: LLMPlanner(settings_).plan(PROMPTS[1]))
    assert result.planner in ("llm:fake-model", "rules")
    plan = Plan.model_validate(result.plan.model_dump())  # a valid plan, whatever was answered
    assert 1 <= len(plan.objects) <= MAX_OBJECTS
    assert all(len(obj.boxes) == obj.count for obj in plan.objects)
    # Bounded work: tries per request x (answer + repair rounds), plus response-format step-downs.
    most = settings_.attempts * (settings_.repair_rounds + 1) + 3
    assert len(server.requests) <= most, len(server.requests)
    assert len(result.warnings) <= 12, result.warnings  # summarised, not one line per box
    for warning in result.warnings:
        assert "\x1b" not in warning and "\n" not in warning and len(warning) < 2_000, warning


@settings(CI, max_examples=120)
@given(st.lists(_step, min_size=1, max_size=4))
def test_any_llm_reply_gives_a_valid_plan_or_the_rules_planner(
    llm_server: FakeOpenAI, steps: list[Step]
) -> None:
    _llm_case(llm_server, steps)


@pytest.mark.slow
@settings(SLOW, max_examples=1200)
@given(st.lists(_step, min_size=1, max_size=4))
def test_any_llm_reply_many(llm_server: FakeOpenAI, steps: list[Step]) -> None:
    _llm_case(llm_server, steps)


# ----------------------------------------------------------------------------- concurrent turns
_request = st.tuples(
    st.sampled_from(PROMPTS), st.sampled_from(["vanilla", "regional", "stitch"]), st.integers(0, 3)
)


class _Shared:
    """One agent (one model) that all concurrent requests share, and each request's solo image."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sw-concurrent-"))
        self.agent = Agent(steps=3, max_refine_rounds=0, out_dir=self.root / "out")
        self.solo: dict[tuple[str, str, int], np.ndarray] = {}
        self.runs = 0

    def alone(self, request: tuple[str, str, int]) -> np.ndarray:
        if request not in self.solo:
            prompt, strategy, seed = request
            result = self.agent.run(prompt, thread_id=f"solo-{len(self.solo)}", strategy=strategy, seed=seed)
            assert result.status == "done" and result.strategy == strategy, result.summary()
            self.solo[request] = np.asarray(result.image)
        return self.solo[request]


@pytest.fixture(scope="module")
def shared() -> Iterator[_Shared]:
    state = _Shared()
    yield state
    shutil.rmtree(state.root, ignore_errors=True)


def _concurrent_case(state: _Shared, requests: list[tuple[str, str, int]]) -> None:
    expected = [state.alone(r) for r in requests]
    state.runs += 1
    threads = [f"run{state.runs}-{k}" for k in range(len(requests))]
    results: list[AgentResult | None] = [None] * len(requests)

    def turn(k: int) -> None:
        prompt, strategy, seed = requests[k]
        results[k] = state.agent.run(prompt, thread_id=threads[k], strategy=strategy, seed=seed)

    def all_turns() -> None:
        workers = [threading.Thread(target=turn, args=(k,)) for k in range(len(requests))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    _bounded(all_turns)
    for k, result in enumerate(results):
        assert result is not None and result.status == "done", result and result.summary()
        assert result.strategy == requests[k][1], (requests[k], result.notes)  # no silent fallback
        assert np.array_equal(np.asarray(result.image), expected[k]), requests[k]
        kept = state.agent.current(threads[k])  # the turn is in the history, its image on disk
        assert kept.status == "done" and Path(kept.paths["image"]).is_file()


@settings(CI, max_examples=4)
@given(st.lists(_request, min_size=2, max_size=3))
def test_concurrent_requests_render_what_they_render_alone(
    shared: _Shared, requests: list[tuple[str, str, int]]
) -> None:
    _concurrent_case(shared, requests)


@pytest.mark.slow
@settings(SLOW, max_examples=30)
@given(st.lists(_request, min_size=2, max_size=4))
def test_concurrent_requests_many(shared: _Shared, requests: list[tuple[str, str, int]]) -> None:
    _concurrent_case(shared, requests)
