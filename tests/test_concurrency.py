"""Issue 17, items 1 and 3: renders on one model take turns, every turn reaches the history (threads
and processes on one file), and a cancel stops the sampler within a step and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenewright import Agent
from scenewright.agent.core import AgentResult, _ctrl_c_cancels, _load_backend
from scenewright.agent.turns import CancelSwitches, TurnLock
from scenewright.errors import RenderCancelled

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "two red circles left of a blue square"
REPO = Path(__file__).resolve().parent.parent


def _pixels(result: AgentResult) -> np.ndarray:
    assert result.image is not None, result.summary()
    return np.asarray(result.image)


def _agent(tmp_path: Path, **kwargs: Any) -> Agent:
    return Agent(steps=4, max_refine_rounds=0, out_dir=tmp_path / "out", **kwargs)


# ------------------------------------------------------------------------ one render at a time
def test_a_render_waits_while_another_holds_the_model(tmp_path: Path) -> None:
    """While the model's render lock is held elsewhere, a turn plans but draws no step."""
    agent = _agent(tmp_path, strategy="regional")
    backend = agent.load_backend()
    events: list[dict[str, Any]] = []
    results: list[AgentResult] = []
    with backend.render_lock():
        worker = threading.Thread(target=lambda: results.append(agent.run(PROMPT, on_event=events.append)))
        worker.start()
        time.sleep(1.5)
        steps_while_held = [e for e in events if "step" in str(e.get("message", ""))]
        assert worker.is_alive()
        assert steps_while_held == []
    worker.join(60)
    assert not worker.is_alive()
    assert results[0].status == "done", results[0].summary()
    assert any("step" in str(e.get("message", "")) for e in events)


def test_concurrent_turns_render_exactly_what_they_render_alone(tmp_path: Path) -> None:
    """Two threads on one model (regional and stitch install processors and hooks on it): each
    image is pixel-identical to the same turn rendered alone, and nothing falls back to vanilla."""
    plans = {"regional": PROMPT, "stitch": "a green triangle above a yellow star"}
    alone = {}
    for strategy, prompt in plans.items():
        solo = _agent(tmp_path / f"solo-{strategy}", strategy=strategy)
        alone[strategy] = _pixels(solo.run(prompt, seed=3))
    together: dict[str, list[AgentResult]] = {name: [] for name in plans}
    agents = {name: _agent(tmp_path / f"together-{name}", strategy=name) for name in plans}

    def worker(name: str, index: int) -> None:
        for turn in range(2):  # a new conversation each time: a repeat would be read as a follow-up
            result = agents[name].run(plans[name], seed=3, thread_id=f"{index}-{turn}")
            together[name].append(result)

    threads = [threading.Thread(target=worker, args=(name, i)) for name in plans for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for name, results in together.items():
        assert len(results) == 4
        for result in results:
            assert result.status == "done", result.summary()
            assert not any("fell back" in note for note in result.notes), result.notes
            assert result.strategy.startswith(name)
            np.testing.assert_array_equal(_pixels(result), alone[name])


# --------------------------------------------------------------------------- every turn kept
def test_one_thread_id_from_two_python_threads_keeps_both_turns(tmp_path: Path) -> None:
    agent = _agent(tmp_path, strategy="vanilla", history=tmp_path / "history.sqlite")
    threads = [
        threading.Thread(target=agent.run, args=(prompt,))
        for prompt in ("a red circle", "a blue square on a white background")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    turns = agent.history()
    assert len(turns) == 2
    assert {Path(t["paths"]["image"]).parent.name for t in turns} == {"turn-001", "turn-002"}
    agent.close()


_CHAT_PROCESS = textwrap.dedent(
    """
    import sys
    import torch
    torch.set_num_threads(1)
    from scenewright import Agent
    agent = Agent(steps=2, strategy="vanilla", max_refine_rounds=0, out_dir=sys.argv[2],
                  history=sys.argv[1])
    for word in ("circle", "square", "star"):
        result = agent.run(f"a {sys.argv[3]} {word}")
        assert result.status == "done", result.summary()
    agent.close()
    """
)


def test_two_processes_on_one_history_file_keep_every_turn(tmp_path: Path) -> None:
    """Each process plays 3 turns on thread 'main' of one SQLite file at the same time: 6 turns."""
    history = tmp_path / "history.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CHAT_PROCESS, str(history), str(tmp_path / "out"), colour],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for colour in ("red", "blue")
    ]
    for process in processes:
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0, err[-2000:]
    with Agent(history=history, out_dir=tmp_path / "out") as reader:
        turns = reader.history()
    assert len(turns) == 6
    requests = sorted(t["request"] for t in turns)
    assert requests == sorted(f"a {c} {w}" for c in ("red", "blue") for w in ("circle", "square", "star"))
    folders = {t["paths"]["image"] for t in turns}
    assert len(folders) == 6 and all(Path(f).is_file() for f in folders)


def test_turn_lock_blocks_a_second_holder_until_released(tmp_path: Path) -> None:
    first, second = TurnLock(tmp_path / "h.sqlite"), TurnLock(tmp_path / "h.sqlite")
    order: list[str] = []
    with first.held():
        waiter = threading.Thread(target=lambda: (second.held().__enter__(), order.append("second")))
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(5)
    assert order == ["first done", "second"]


# ------------------------------------------------------------------------------ cancellation
def test_cancel_stops_within_a_step_and_keeps_the_last_image(tmp_path: Path) -> None:
    agent = Agent(steps=40, strategy="regional", max_refine_rounds=0, out_dir=tmp_path / "out")
    first = agent.run(PROMPT, seed=1)
    assert first.status == "done"
    steps_seen: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("node") == "execute" and "step" in str(event.get("message", "")):
            steps_seen.append(int(event["step"]))
            if len(steps_seen) == 3:
                assert agent.cancel()

    cancelled = agent.run("a green triangle above a yellow star", seed=1, on_event=on_event)
    assert cancelled.status == "cancelled"
    assert "cancelled" in cancelled.errors[0]
    assert len(steps_seen) == 3  # the step after the cancel never ran (40 were planned)
    assert cancelled.paths["image"] == first.paths["image"]  # the last good image stays
    np.testing.assert_array_equal(_pixels(cancelled), _pixels(first))
    assert len(agent.history()) == 1
    assert "kept the last good image" in cancelled.summary()
    # nothing half-written: the cancelled turn's folder holds no image, and no temporary files
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix == ".tmp"]
    assert leftovers == []
    assert not agent.cancel()  # nothing running: a late cancel does not touch the next turn
    after = agent.run("a blue square", seed=1)
    assert after.status == "done" and len(agent.history()) == 2


def test_cancel_switches_are_per_turn() -> None:
    switches = CancelSwitches()
    assert not switches.cancel("t")
    with switches.turn("t"):
        assert not switches.is_cancelled("t")
        assert switches.cancel("t")
        assert switches.is_cancelled("t") and not switches.is_cancelled("other")
    assert not switches.is_cancelled("t")
    with switches.turn("t"):
        assert not switches.is_cancelled("t")


def test_cancel_check_unwinds_a_strategy_and_restores_processors() -> None:
    from scenewright.executor.sampler import CancelCheck, SamplingSettings
    from scenewright.executor.strategies import run_strategy
    from scenewright.planner.rules import plan_with_rules

    backend = _load_backend("tiny", None, "auto")
    before = {name: type(p) for name, p in backend.transformer.attn_processors.items()}
    plan = plan_with_rules(PROMPT, 0).plan
    settings = SamplingSettings(steps=6, height=64, width=64, guidance=backend.defaults.guidance, seed=0)
    calls = iter(range(100))
    with pytest.raises(RenderCancelled):
        run_strategy("regional", backend, plan, settings, hooks=[CancelCheck(lambda: next(calls) >= 2)])
    after = {name: type(p) for name, p in backend.transformer.attn_processors.items()}
    assert after == before
    assert backend.render_lock().acquire(blocking=False)  # released on the way out
    backend.render_lock().release()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs signals")
def test_first_ctrl_c_cancels_the_turn_and_the_second_interrupts() -> None:
    flag = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    with _ctrl_c_cancels(flag):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert flag.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is previous


def test_ctrl_c_on_generate_stops_the_render_and_writes_nothing(tmp_path: Path) -> None:
    """A 1,000-step render interrupted once it has begun ends within seconds, exit code 130."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "scenewright", "generate", PROMPT, "--steps", "1000", "--out", str(out)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "execute" not in seen and time.monotonic() < deadline:
        seen += process.stderr.read(1)
    assert "execute" in seen, seen
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    interrupted_at = time.monotonic()
    _, err = process.communicate(timeout=60)
    waited = time.monotonic() - interrupted_at
    assert process.returncode == 130, err[-1000:]
    assert "interrupted" in err
    assert "Traceback" not in err
    assert not (out / "image.png").exists()
    # A thousand steps take half a minute or more here; a cancel ends at the next one.
    assert waited < 15, waited


def test_cancelled_turn_in_chat_keeps_the_chat(tmp_path: Path) -> None:
    """The chat answers a cancelled turn and goes on with the next line."""
    import io

    from scenewright.agent.chat import run_chat

    agent = Agent(steps=30, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path / "out")
    original_run = agent.run

    def run_and_cancel(prompt: str, **kwargs: Any) -> AgentResult:
        if "star" in prompt:
            kwargs["on_event"] = lambda e: "step 2/" in str(e.get("message", "")) and agent.cancel()
        return original_run(prompt, **kwargs)

    agent.run = run_and_cancel  # type: ignore[method-assign]
    stdin = io.StringIO("a yellow star\na red circle\n")
    stdout = io.StringIO()
    code = run_chat(agent, stdin, stdout, io.StringIO(), progress=False)
    text = stdout.getvalue()
    assert "render cancelled" in text
    assert "rendered with vanilla" in text  # the next line still rendered
    assert code == 0
    assert len(agent.history()) == 1


def test_a_history_file_another_process_is_setting_up_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'database is locked' while the file is switched to WAL is waited out, not reported."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    from scenewright.agent import core
    from scenewright.errors import InvalidInputError

    real_setup = SqliteSaver.setup
    calls: list[int] = []

    def locked_twice(self: SqliteSaver) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        real_setup(self)

    monkeypatch.setattr(SqliteSaver, "setup", locked_twice)
    monkeypatch.setattr(core.time, "sleep", lambda _s: None)
    with Agent(history=tmp_path / "history.sqlite", out_dir=tmp_path / "out") as agent:
        assert len(calls) == 3  # two locked tries, then the one that opened it
        assert agent.history() == []

    def always_locked(self: SqliteSaver) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SqliteSaver, "setup", always_locked)
    with pytest.raises(InvalidInputError, match="database is locked"):
        Agent(history=tmp_path / "other.sqlite", out_dir=tmp_path / "out")
