"""Agent-API cases of the reliability table, one per process: ``python -m
scenewright.bench.reliability.agent_cases CASE``.

A case returns None when the product behaved, or what went wrong; a refusal is a typed error (or
an invalid turn) and is printed as one ``error:`` line with exit code 2, as the CLI does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from scenewright.agent.core import Agent, AgentResult
from scenewright.errors import InvalidInputError, ScenewrightError

PROMPT = "two red circles left of a blue square"


def _agent(root: Path, **kwargs: Any) -> Agent:
    return Agent(steps=kwargs.pop("steps", 3), max_refine_rounds=0, out_dir=root / "out", **kwargs)


def _refused(result: AgentResult) -> None:
    if result.status == "invalid":
        raise InvalidInputError("plan", result.errors[0] if result.errors else "refused", "see the errors")


def run_none(root: Path) -> str | None:
    _agent(root).run(None)  # type: ignore[arg-type]
    return "run(None) rendered something"


def unknown_strategy(root: Path) -> str | None:
    result = _agent(root).run("a red circle", strategy="bogus")
    return f"strategy 'bogus' rendered with {result.strategy}"


def plan_of_12000_objects(root: Path) -> str | None:
    objects = [{"name": "circle", "count": 1, "prompt": "red circle"} for _ in range(12_000)]
    started = time.perf_counter()
    result = _agent(root).render_plan(json.dumps({"prompt": "circles", "objects": objects}))
    if time.perf_counter() - started > 30:
        return "took more than 30 s to refuse"
    _refused(result)
    return f"a 12,000-object plan ended {result.status}"


def plan_with_a_huge_integer(root: Path) -> str | None:
    text = (
        '{"prompt": "a red circle", "objects": [{"name": "circle", "count": 1}], "seed": ' + str(2**70) + "}"
    )
    result = _agent(root).render_plan(text)
    _refused(result)
    return None if result.status == "done" else f"ended {result.status}: {result.errors}"


def two_threads_one_model(root: Path) -> str | None:
    agent = _agent(root)
    cases = [("regional", 0), ("stitch", 1)]
    alone = {
        c: np.asarray(agent.run(PROMPT, thread_id=f"solo{c}", strategy=c[0], seed=c[1]).image) for c in cases
    }
    results: dict[Any, AgentResult] = {}

    def turn(case: tuple[str, int], k: int) -> None:
        results[(case, k)] = agent.run(PROMPT, thread_id=f"t{case}{k}", strategy=case[0], seed=case[1])

    workers = [threading.Thread(target=turn, args=(c, k)) for c in cases for k in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for (case, _k), result in results.items():
        if result.strategy != case[0]:
            return f"{case[0]} fell back to {result.strategy}"
        if not np.array_equal(np.asarray(result.image), alone[case]):
            return f"{case[0]} differs from the same turn rendered alone"
    return None


_TURNS = """
import sys
from scenewright.agent.core import Agent
agent = Agent(steps=2, max_refine_rounds=0, out_dir=sys.argv[1], history=sys.argv[2], strategy="vanilla")
for k in range(3):
    assert agent.run(f"{k + 1} {sys.argv[3]} circles").status == "done"
"""


def two_processes_one_history(root: Path) -> str | None:
    history = root / "history.sqlite"
    procs = [
        # Each its own colour: both write the one thread, so a request must never ask for the
        # scene the other process has just drawn (that turn would be answered, not rendered).
        subprocess.Popen([sys.executable, "-c", _TURNS, str(root / f"out{k}"), str(history), colour])
        for k, colour in enumerate(("red", "blue"))
    ]
    codes = [p.wait(timeout=300) for p in procs]
    if any(codes):
        return f"a process failed ({codes})"
    turns = Agent(out_dir=root / "check", history=history).history()
    return None if len(turns) == 6 else f"{len(turns)} of 6 turns in the history"


def cancel_a_long_render(root: Path) -> str | None:
    agent = _agent(root, steps=1000, strategy="vanilla")
    events: list[dict[str, Any]] = []
    result: list[AgentResult] = []
    worker = threading.Thread(target=lambda: result.append(agent.run("a red circle", on_event=events.append)))
    worker.start()
    while worker.is_alive() and not any("step" in str(e.get("message", "")) for e in events):
        time.sleep(0.05)
    asked = time.perf_counter()
    agent.cancel()
    worker.join(60)
    if worker.is_alive():
        return "the render did not stop within 60 s"
    waited = time.perf_counter() - asked
    if result[0].status != "cancelled":
        return f"ended {result[0].status}"
    return None if waited < 10 else f"stopped {waited:.0f} s after the cancel"


@contextmanager
def _server(answer: Callable[[], str | None]) -> Iterator[str]:
    """A chat-completions endpoint on 127.0.0.1 whose every answer is ``answer()``; None: never
    answer (the connection stays open)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            content = answer()
            if content is None:
                time.sleep(3600)
                return
            body = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def _llm_agent(root: Path, base_url: str, timeout: float = 5.0) -> Agent:
    from scenewright.planner.llm import LLMSettings

    settings = LLMSettings(model="m", base_url=base_url, api_key="k", timeout=timeout, backoff=0.1)
    return _agent(root, planner="llm", llm_settings=settings)


def llm_that_never_answers(root: Path) -> str | None:
    planned: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("node") not in ("plan", None) and not planned:
            planned.append(time.perf_counter())

    with _server(lambda: None) as url:
        agent = _llm_agent(root, url, timeout=2.0)
        agent.load_backend()  # the wait measured is the planner's, not the model's loading
        started = time.perf_counter()
        result = agent.run(PROMPT, on_event=on_event)
        waited = (planned or [time.perf_counter()])[0] - started
    if result.status != "done":
        return f"ended {result.status}"
    if not any("LLM" in n for n in result.notes):
        return "fell back to the rules planner without a note"
    return None if waited < 30 else f"waited {waited:.0f} s before falling back"


def llm_answer_of_10000_objects(root: Path) -> str | None:
    objects = [{"name": "circle", "count": 1, "prompt": "red circle"} for _ in range(10_000)]
    with _server(lambda: json.dumps({"prompt": PROMPT, "objects": objects})) as url:
        result = _llm_agent(root, url).run(PROMPT)
    lines = sum(str(n).count("\n") + 1 for n in result.notes)
    return None if lines <= 20 else f"{lines} lines of notes"


def llm_object_name_not_text(root: Path) -> str | None:
    answer = {"prompt": PROMPT, "objects": [{"name": 5, "count": 1}, {"name": "square", "count": 1}]}
    with _server(lambda: json.dumps(answer)) as url:
        result = _llm_agent(root, url).run(PROMPT)
    names = [o.name for o in result.plan.objects] if result.plan else []
    return f"an object named '5' ({names})" if "5" in names else None


def seed_as_digit_string(root: Path) -> str | None:
    result = _agent(root).run("a red circle", seed="7")  # type: ignore[arg-type]
    return (
        None if result.status == "done" and result.seed == 7 else f"ended {result.status}, seed {result.seed}"
    )


def seed_with_a_fraction(root: Path) -> str | None:
    result = _agent(root).run("a red circle", seed=1.9)  # type: ignore[arg-type]
    return f"seed 1.9 rendered as seed {result.seed}"


def empty_thread_id(root: Path) -> str | None:
    result = _agent(root).run("a red circle", thread_id="")
    return f"thread_id '' rendered in thread {result.thread_id!r}"


def llm_answer_nested_5000_deep(root: Path) -> str | None:
    with _server(lambda: '{"objects": ' + "[" * 5000 + "]" * 5000 + "}") as url:
        result = _llm_agent(root, url).run(PROMPT)
    if result.status != "done" or not any("rules planner" in n for n in result.notes):
        return f"ended {result.status} without falling back to the rules planner"
    return None


def llm_object_names_with_paths_and_escapes(root: Path) -> str | None:
    answer = {"prompt": PROMPT, "objects": [{"name": "../../etc/passwd"}, {"name": "circle\x1b[2J"},
                                             {"name": "a\u202eb"}, {"name": "%s"}]}  # fmt: skip
    with _server(lambda: json.dumps(answer)) as url:
        result = _llm_agent(root, url).run(PROMPT)
    names = [o.name for o in result.plan.objects] if result.plan else []
    bad = [n for n in names if any(c in n for c in ("/", "\x1b", "\u202e", "%"))]
    return f"objects named {bad}" if bad else None


def box_editor_hostile_payloads(root: Path) -> str | None:
    """The four payloads that once raised inside the annotation component, and a 12,000 x 12,000
    PNG: each refused by our check, in one line, before the component reads it."""
    from PIL import Image

    from scenewright.agent.web_boxes import checked_annotator, plan_from_boxes

    small, huge = root / "small.png", root / "huge.png"
    Image.new("RGB", (64, 64)).save(small)
    Image.new("1", (12_000, 12_000)).save(huge)
    image = {"path": str(small), "meta": {"_type": "gradio.FileData"}}
    box = {"label": "red circle", "xmin": 1, "ymin": 1, "xmax": 30, "ymax": 30}
    plan = {"prompt": "a red circle", "objects": [{"name": "circle", "attributes": ["red"], "count": 1}]}
    editor = checked_annotator(None, image_type="numpy")
    for payload in ({}, {"image": None, "boxes": [box]}, {"image": image, "boxes": [{"label": "red circle"}]},
                    {"image": image, "boxes": [{**box, "xmin": "3"}]}, {"image": {**image, "path": str(huge)}}):  # fmt: skip
        try:
            plan_from_boxes(plan, editor.preprocess(editor.data_model.model_validate(payload)))
        except InvalidInputError as error:
            if "\n" in str(error) or not str(error).startswith("boxes: "):
                return f"a message that is not one line: {error}"
            continue
        return f"accepted {str(payload)[:80]}"
    return None


def empty_image_says_it_differs(root: Path) -> str | None:
    """An all-black render (max pixel 1) on a model the verifier cannot judge: the status says it
    differs from the plan, never "done" alone."""
    import torch

    from scenewright.agent.core import _load_backend
    from scenewright.agent.web import _status

    backend = _load_backend("tiny", "cpu", "auto")
    drawn = backend.decode
    # The embedded model, decoding every image to black (max pixel 1), as four edited plans once did.
    backend.decode = lambda latents, h, w: torch.full_like(drawn(latents, h, w), 1 / 255)  # type: ignore[method-assign,assignment]
    agent = Agent(
        backend, steps=2, max_refine_rounds=0, out_dir=root / "out",
        verifier=lambda image, plan, report: ([], None), strategy="vanilla",
    )  # fmt: skip
    result = agent.render_plan({"prompt": "a red circle", "objects": [
        {"name": "circle", "attributes": ["red"], "boxes": [[0.1, 0.1, 0.5, 0.5]]}]})  # fmt: skip
    said = _status(result)
    return None if "differs from the plan" in said else f"status {said!r} for an all-black image"


CASES: dict[str, Callable[[Path], str | None]] = {
    f.__name__: f
    for f in (
        run_none, unknown_strategy, plan_of_12000_objects, plan_with_a_huge_integer, two_threads_one_model,
        two_processes_one_history, cancel_a_long_render, llm_that_never_answers, llm_answer_of_10000_objects,
        llm_object_name_not_text, seed_as_digit_string, seed_with_a_fraction, empty_thread_id,
        llm_answer_nested_5000_deep, llm_object_names_with_paths_and_escapes, box_editor_hostile_payloads,
        empty_image_says_it_differs,
    )
}  # fmt: skip


def main(argv: list[str]) -> int:
    case = CASES[argv[0]]
    with tempfile.TemporaryDirectory(prefix="sw-reliability-") as folder:
        try:
            problem = case(Path(folder))
        except ScenewrightError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"wrong: {problem}" if problem else "ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
