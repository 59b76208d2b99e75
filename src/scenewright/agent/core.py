"""``Agent``: the Python face of the graph, and what the terminal and web chats are built on.

One agent holds one loaded backend and one checkpointer; conversations are threads in it. A turn
is either words ("three red apples left of a blue vase", then "make it four apples") or a plan
the user edited; with ``review=True`` a turn stops after planning until :meth:`Agent.resume`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from PIL import Image

from scenewright.agent.followup import plan_json
from scenewright.agent.graph import build_graph
from scenewright.agent.nodes import (
    Event,
    PlannerFn,
    Toolbox,
    Verifier,
    emit,
    report_verifier,
    strategy_options,
    toy_verifier,
)
from scenewright.agent.options import DEFAULT_REFINE_ROUNDS
from scenewright.agent.state import fresh_turn
from scenewright.agent.turns import CancelSwitches, TurnLock
from scenewright.backends.base import Backend
from scenewright.backends.lora_files import LoraSpec
from scenewright.errors import InvalidInputError
from scenewright.executor.limits import resolve_seed
from scenewright.executor.strategies import STRATEGIES
from scenewright.planner.plan import Plan, PlanResult
from scenewright.tools.segment import Segmenter, SegmenterSpec, load_segmenter, resolve_segmenter
from scenewright.untrusted import load_json

DEFAULT_OUT = Path("out") / "agent"
# Two processes opening one history file at once: switching it to WAL takes an exclusive lock
# that SQLite's busy timeout does not always wait for, so opening is retried a few times.
HISTORY_BUSY_SECONDS = 30.0
HISTORY_OPEN_ATTEMPTS = 5
EventCallback = Callable[[Event], None]

_BACKENDS: dict[tuple[Any, ...], Backend] = {}
_BACKENDS_LOCK = threading.Lock()


def _load_backend(
    name: str,
    device: str | None,
    dtype: str,
    cpu_offload: bool | str | None = False,
    quantize: str | None = None,
    loras: Sequence[LoraSpec] = (),
) -> Backend:
    """Load a backend once per process: chats, the web UI and tests share the weights. Its LoRAs
    change the transformer, so a backend with other LoRAs is another backend."""
    from scenewright.backends import load_backend, resolve_backend

    key = (name, str(device), dtype, cpu_offload, quantize, tuple(loras))
    with _BACKENDS_LOCK:
        if key not in _BACKENDS:
            spec = resolve_backend(name)
            backend = load_backend(
                spec, device=device, dtype=dtype, cpu_offload=cpu_offload, quantize=quantize
            )
            if loras:
                from scenewright.backends.lora import load_loras

                load_loras(backend, loras)
            _BACKENDS[key] = backend
        return _BACKENDS[key]


def check_loras(backend: str | Backend, loras: Sequence[str | LoraSpec]) -> tuple[LoraSpec, ...]:
    """``loras`` parsed and their files checked against the backend's family, before any weights load."""
    from scenewright.backends.lora_files import inspect_lora, lora_family_of, parse_loras

    if not loras:
        return ()
    specs = [
        *parse_loras([x for x in loras if isinstance(x, str)]),
        *[x for x in loras if isinstance(x, LoraSpec)],
    ]
    if isinstance(backend, str):
        from scenewright.backends import resolve_backend

        family = resolve_backend(backend).family
    else:
        family = backend.family
    for spec in specs:
        inspect_lora(spec, lora_family_of(family))
    return tuple(specs)


def _planner(choice: str | PlannerFn, llm_settings: Any = None) -> PlannerFn:
    if callable(choice):
        return choice
    if choice == "rules":
        from scenewright.planner.rules import plan_with_rules

        return plan_with_rules
    if choice == "llm":
        from scenewright.planner.llm import LLMSettings, plan_with_llm

        base = llm_settings or LLMSettings()

        def plan(prompt: str, seed: int) -> PlanResult:
            most = base.timeout * base.timeout_attempts
            emit(
                "plan", 0, 1, f"asking the LLM (up to {most:.0f} s without an answer, then the rules planner)"
            )
            return plan_with_llm(prompt, replace(base, seed=seed))

        return plan
    raise InvalidInputError("planner", f"unknown planner '{choice}'", "use rules or llm")


def _json_or_none(text: str) -> Any:
    try:
        return load_json(text, "plan", "write one JSON object with prompt and objects")
    except InvalidInputError:
        return None  # the review node reports the problem itself


def _unstorable(data: Any, where: str = "plan", depth: int = 0) -> str | None:
    """Why ``data`` cannot go into the history, or None. The checkpointer stores integers in 64
    bits (msgpack) and fails deep inside LangGraph on larger ones; say which field instead."""
    if depth > 32:
        return f"{where}: nested more than 32 levels deep; a plan is a flat object"
    if isinstance(data, bool) or data is None:
        return None
    if isinstance(data, int) and not -(2**63) <= data < 2**63:
        return f"{where}: the integer {str(data)[:24]} is out of range; use a number below 2**63"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        problem = _unstorable(
            value, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]", depth + 1
        )
        if problem:
            return problem
    return None


MAX_THREAD_CHARS = 200  # an id, not a document: it is a key in the history file


def _thread_name(value: object) -> str:
    """A conversation id: non-empty text of printable characters."""
    fix = 'name the conversation, e.g. thread_id="main", or leave it out'
    if not isinstance(value, str):
        raise InvalidInputError("thread_id", f"{type(value).__name__} is not text", fix)
    if not value.strip():
        raise InvalidInputError("thread_id", "is empty", fix)
    if len(value) > MAX_THREAD_CHARS or not value.isprintable():
        raise InvalidInputError(
            "thread_id", f"is not a short printable name (at most {MAX_THREAD_CHARS} characters)", fix
        )
    return value


@dataclass
class AgentResult:
    """What a turn produced. ``image`` is the new image, or the last good one when the turn failed."""

    # "done", "invalid", "failed", "cancelled", or "review" (waiting for :meth:`Agent.resume`)
    status: str
    thread_id: str
    image: Image.Image | None = None
    plan: Plan | None = None
    report: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    strategy: str = ""
    seed: int = 0
    verified: bool | None = None
    pending_plan: dict[str, Any] | None = None  # the plan waiting for review
    plan_source: str = ""
    # The turn's refine passes (as the state's ``refine_explanation``) and what drew the image
    # the first pass corrected: together they say what ran, in :meth:`rendered_with`.
    refine: list[dict[str, Any]] = field(default_factory=list)
    refined_from: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def rendered_with(self) -> str:
        """What ran, in words: "vanilla", or "vanilla, refine 1 round: kept the first image"."""
        return rendered_with(self.strategy, self.refined_from, self.refine)

    def summary(self) -> str:
        """A few lines for a terminal or chat bubble: what was done, said and written."""
        lines: list[str] = []
        if self.status == "review":
            lines.append("plan ready for review (edit it, then resume):")
            lines.append(plan_json(self.pending_plan))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.extend(f"error: {e}" for e in self.errors if e not in self.notes)
        if self.status == "done":
            from scenewright.agent.object_report import result_summary

            lines.append(f"rendered with {self.rendered_with()}, seed {self.seed}: {result_summary(self)}")
            for kind, path in self.paths.items():
                lines.append(f"{kind}: {path}")
        elif self.status in ("invalid", "failed", "cancelled") and self.paths.get("image"):
            lines.append(f"kept the last good image: {self.paths['image']}")
        return "\n".join(lines)


def rendered_with(strategy: str, refined_from: str, passes: list[dict[str, Any]]) -> str:
    """The strategy that drew a turn's image and what refine did to it, for every face: a pass
    that kept no repair leaves the first image, and the line says so rather than "refine:vanilla"."""
    if not passes:
        return strategy
    repaired = sum(1 for p in passes if any(r.get("kept") for r in p.get("rounds", [])))
    rounds = f"refine {len(passes)} round" + ("" if len(passes) == 1 else "s")
    outcome = (
        "kept the first image" if not repaired else f"kept {repaired} repair" + ("s" if repaired > 1 else "")
    )
    return f"{refined_from or strategy}, {rounds}: {outcome}"


class Agent:
    """Plans, renders, verifies and remembers; see the module doc.

    ``backend``: a name as for ``--backend`` or a loaded :class:`Backend`. ``planner``: "rules"
    (offline), "llm" (OpenAI-compatible; falls back to rules and says so) or a function.
    ``strategy``: "auto" or a strategy name. ``history``: a SQLite file that keeps threads
    across processes (in memory otherwise). ``sam``: what draws refine's masks, as for ``--sam``
    (a transformers SAM folder, a ``.pth``, ``vit_b:PATH``) or a built
    :class:`~scenewright.tools.segment.Segmenter`; checked now, loaded once when refine first runs.
    None: the objects' attention maps. ``seed``, here and in ``run``/``set_seed``: ``-1`` draws a
    random seed there and then, which the turn, its metadata and ``result.seed`` then carry.
    """

    def __init__(
        self,
        backend: str | Backend = "tiny",
        planner: str | PlannerFn = "rules",
        strategy: str = "auto",
        *,
        steps: int | None = None,
        height: int | None = None,
        width: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        out_dir: str | Path = DEFAULT_OUT,
        history: str | Path | None = None,
        thread_id: str = "main",
        review: bool = False,
        max_refine_rounds: int = DEFAULT_REFINE_ROUNDS,
        device: str | None = None,
        dtype: str = "auto",
        verifier: Verifier | None = None,
        llm_settings: Any = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        negative_prompt: str = "",
        cpu_offload: bool | str | None = False,
        quantize: str | None = None,
        flat_output: bool = False,
        overwrite: bool = False,
        sam: str | Segmenter | None = None,
        loras: Sequence[str | LoraSpec] = (),
    ) -> None:
        self._segmenter: Segmenter | None = None
        self._segmenter_spec: SegmenterSpec | None = None
        self._segmenter_lock = threading.Lock()
        if isinstance(sam, str) and sam.strip():
            self._segmenter_spec = resolve_segmenter(sam)  # a bad path fails here, before any render
        elif sam is not None and not isinstance(sam, str):
            self._segmenter = sam
        self.backend_name = backend if isinstance(backend, str) else backend.name
        self._backend = None if isinstance(backend, str) else backend
        # ``--lora`` values: every file checked now (a LoRA, of this family), loaded with the model.
        self.loras = check_loras(backend, loras)
        if self._backend is not None and self.loras:
            from scenewright.backends.lora import load_loras

            load_loras(self._backend, self.loras)
        self._device, self._dtype, self._cpu_offload = device, dtype, cpu_offload
        self._quantize = quantize
        self.strategy = strategy
        self.settings: dict[str, Any] = {
            "steps": steps,
            "height": height,
            "width": width,
            "guidance": guidance,
            "negative_prompt": negative_prompt,
        }
        self.seed = None if seed is None else resolve_seed(seed)
        self.thread_id = _thread_name(thread_id)
        self.review = review
        self.out_dir = Path(out_dir)
        self._conn: sqlite3.Connection | None = None
        # A given checkpointer is the caller's to share; a history file is locked turn by turn.
        self._turn_lock = TurnLock(Path(history) if history is not None and checkpointer is None else None)
        self._cancels = CancelSwitches()
        if checkpointer is None:
            checkpointer = self._sqlite(Path(history)) if history is not None else InMemorySaver()
        self.checkpointer = checkpointer
        self.tools = Toolbox(
            planner=_planner(planner, llm_settings),
            backend=self.load_backend,
            verifier=verifier or self._default_verifier,
            out_dir=self.out_dir,
            max_refine_rounds=max_refine_rounds,
            strategies=STRATEGIES,
            flat=flat_output,
            overwrite=overwrite,
            segmenter=self.load_segmenter,
            cancelled=self._cancels.is_cancelled,
        )
        self.graph = build_graph(self.tools, checkpointer)

    # ------------------------------------------------------------------------------- set-up
    def _sqlite(self, path: Path) -> BaseCheckpointSaver[Any]:
        """The history file's saver, opened and checked now: a folder, a read-only file or a file
        that is not our SQLite history is refused before the first turn, not after its render."""
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = path.expanduser()
        fix = "give a new file name, or a file an earlier --history wrote"
        if path.is_dir():
            raise InvalidInputError("history", f"{path} is a folder", fix)
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise InvalidInputError("history", f"{path} cannot be read and written", fix)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInputError(
                "history", f"{path} is not a usable history file ({error})", fix
            ) from None
        for attempt in range(1, HISTORY_OPEN_ATTEMPTS + 1):
            try:
                # The saver serialises access with its own lock, so threads (the web UI) may share it.
                self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=HISTORY_BUSY_SECONDS)
                saver = SqliteSaver(self._conn)
                saver.setup()
                return saver
            except (sqlite3.Error, OSError) as error:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                locked = isinstance(error, sqlite3.OperationalError) and "locked" in str(error)
                if not locked or attempt == HISTORY_OPEN_ATTEMPTS:
                    raise InvalidInputError(
                        "history", f"{path} is not a usable history file ({error})", fix
                    ) from None
                time.sleep(0.2 * attempt)  # another process is setting the file up: wait for it
        raise AssertionError("unreachable")  # the loop returns or raises

    def load_backend(self) -> Backend:
        """The backend, loaded on first use (planning alone never loads weights)."""
        if self._backend is None:
            self._backend = _load_backend(
                self.backend_name, self._device, self._dtype, self._cpu_offload, self._quantize, self.loras
            )
        return self._backend

    def load_segmenter(self) -> Segmenter | None:
        """Refine's segmenter, loaded on first use and kept (None: attention maps draw the masks)."""
        with self._segmenter_lock:
            if self._segmenter is None and self._segmenter_spec is not None:
                self._segmenter = load_segmenter(self._segmenter_spec, self._device)
            return self._segmenter

    def _default_verifier(
        self, image: Image.Image, plan: Plan, report: Any
    ) -> tuple[list[dict[str, Any]], bool | None]:
        from scenewright.backends.tiny import TinyBackend

        if isinstance(self.load_backend(), TinyBackend):  # the toy world: judged exactly
            return toy_verifier(image, plan, report)
        return report_verifier(image, plan, report)

    def close(self) -> None:
        """Close the history file, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- turns
    def _thread(self, thread_id: str | None) -> str:
        """The thread a call names: None is this agent's own; "" or a non-name is refused
        (an empty id once silently continued the main thread)."""
        return self.thread_id if thread_id is None else _thread_name(thread_id)

    def _config(self, thread_id: str | None) -> RunnableConfig:
        return {"configurable": {"thread_id": self._thread(thread_id)}}

    def _turn_input(
        self,
        request: str,
        edited_plan: dict[str, Any] | None,
        seed: int | None,
        strategy: str | None,
        review: bool | None,
    ) -> dict[str, Any]:
        # Refused before the graph runs: a bad argument is the caller's typed error, not a
        # turn that crashes in a node or quietly renders with another strategy.
        if not isinstance(request, str):
            raise InvalidInputError(
                "prompt",
                f"{type(request).__name__} is not text",
                'pass the request as a string, e.g. "a red circle"',
            )
        if strategy is not None and strategy != "auto":
            strategy_options(self.tools, strategy)
        if seed is not None:
            seed = resolve_seed(seed)
        values = fresh_turn(request, edited_plan)
        values["strategy"] = strategy or self.strategy
        values["settings"] = dict(self.settings)
        values["review"] = self.review if review is None else review
        chosen_seed = self.seed if seed is None else seed
        if chosen_seed is not None:
            values["seed"] = int(chosen_seed)
        return values

    def stream(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        seed: int | None = None,
        strategy: str | None = None,
        review: bool | None = None,
    ) -> Iterator[Event | AgentResult]:
        """Progress events (dicts with node, step, percent, message), then the :class:`AgentResult`."""
        yield from self._drive(self._turn_input(prompt, None, seed, strategy, review), thread_id)

    def run(
        self,
        prompt: str,
        *,
        thread_id: str | None = None,
        seed: int | None = None,
        strategy: str | None = None,
        review: bool | None = None,
        on_event: EventCallback | None = None,
    ) -> AgentResult:
        """One turn from words: a new request, or a follow-up that edits the previous plan."""
        return self._consume(
            self.stream(prompt, thread_id=thread_id, seed=seed, strategy=strategy, review=review), on_event
        )

    def stream_plan(
        self,
        plan: dict[str, Any] | str,
        *,
        thread_id: str | None = None,
        seed: int | None = None,
        strategy: str | None = None,
    ) -> Iterator[Event | AgentResult]:
        """Like :meth:`stream` for a plan the user wrote or edited (JSON text or a dict)."""
        data: Any = plan
        if isinstance(plan, str):
            try:
                data = load_json(plan, "plan", "write one JSON object with prompt and objects")
            except InvalidInputError as error:
                yield self._failed_result(thread_id, [str(error)])
                return
        if not isinstance(data, dict):
            yield self._failed_result(thread_id, ["plan: must be a JSON object with prompt and objects"])
            return
        problem = _unstorable(data)
        if problem:
            yield self._failed_result(thread_id, [problem])
            return
        yield from self._drive(self._turn_input("", data, seed, strategy, False), thread_id)

    def render_plan(
        self,
        plan: dict[str, Any] | str,
        *,
        thread_id: str | None = None,
        seed: int | None = None,
        strategy: str | None = None,
        on_event: EventCallback | None = None,
    ) -> AgentResult:
        """Render a user-edited plan; if it does not validate, errors by field and the last good image."""
        return self._consume(
            self.stream_plan(plan, thread_id=thread_id, seed=seed, strategy=strategy), on_event
        )

    def stream_resume(
        self, plan: dict[str, Any] | str | None = None, *, thread_id: str | None = None
    ) -> Iterator[Event | AgentResult]:
        """Continue a turn paused for review: None keeps the proposed plan, else the edited one."""
        problem = _unstorable(_json_or_none(plan) if isinstance(plan, str) else plan)
        if problem:
            yield self._failed_result(thread_id, [problem])
            return
        # A resume value of None is not a resume for LangGraph: say "accept" instead.
        yield from self._drive(Command(resume="accept" if plan is None else plan), thread_id)

    def resume(
        self,
        plan: dict[str, Any] | str | None = None,
        *,
        thread_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> AgentResult:
        """Finish a turn paused by ``review=True`` with the (possibly edited) plan."""
        return self._consume(self.stream_resume(plan, thread_id=thread_id), on_event)

    def _consume(self, items: Iterator[Event | AgentResult], on_event: EventCallback | None) -> AgentResult:
        result: AgentResult | None = None
        for item in items:
            if isinstance(item, AgentResult):
                result = item
            elif on_event is not None:
                on_event(item)
        assert result is not None
        return result

    def _drive(self, graph_input: Any, thread_id: str | None) -> Iterator[Event | AgentResult]:
        thread = self._thread(thread_id)
        config = self._config(thread)
        with self._turn_lock.held(), self._cancels.turn(thread) as flag, _ctrl_c_cancels(flag):
            for mode, chunk in self.graph.stream(graph_input, config, stream_mode=["custom", "updates"]):
                if mode == "custom" and isinstance(chunk, dict):
                    yield chunk
            result = self.current(thread)
        yield result

    def cancel(self, thread_id: str | None = None) -> bool:
        """Stop the thread's running render at its next step; False when nothing is running.

        The turn ends with status ``"cancelled"`` and keeps the last good image; files already
        written stay. Safe to call from any thread (the web's cancel button does).
        """
        return self._cancels.cancel(self._thread(thread_id))

    # ---------------------------------------------------------------------------- the thread
    def current(self, thread_id: str | None = None) -> AgentResult:
        """The thread as it stands: the last turn's outcome, or the plan awaiting review."""
        thread = self._thread(thread_id)
        snapshot = self.graph.get_state(self._config(thread))
        values: dict[str, Any] = dict(snapshot.values or {})
        pending = None
        status = values.get("status", "") or "empty"
        if snapshot.interrupts:
            status = "review"
            payload = snapshot.interrupts[0].value
            pending = payload.get("plan") if isinstance(payload, dict) else None
        plan_data = values.get("plan")
        paths = dict(values.get("paths") or {})
        if status != "done":
            paths = {"image": values["image_path"]} if values.get("image_path") else {}
        image = None
        if paths.get("image") and Path(paths["image"]).is_file():
            with Image.open(paths["image"]) as opened:
                image = opened.convert("RGB")
        return AgentResult(
            status=status,
            thread_id=thread,
            image=image,
            plan=Plan.model_validate(plan_data) if plan_data else None,
            report=list(values.get("report") or []) if status == "done" else [],
            paths=paths,
            notes=list(values.get("notes") or []),
            errors=list(values.get("errors") or []),
            strategy=values.get("strategy_used", ""),
            seed=int(values.get("seed", 0)),
            verified=values.get("verified") if status == "done" else None,
            pending_plan=pending,
            plan_source=values.get("plan_source", ""),
            refine=list(values.get("refine_explanation") or []) if status == "done" else [],
            refined_from=str(values.get("refined_from") or ""),
        )

    def _failed_result(self, thread_id: str | None, errors: list[str]) -> AgentResult:
        result = self.current(thread_id)
        result.status, result.errors, result.notes = "invalid", errors, []
        return result

    def history(self, thread_id: str | None = None) -> list[dict[str, Any]]:
        """The thread's rendered turns, oldest first (request, plan, seed, strategy, paths)."""
        values = self.graph.get_state(self._config(thread_id)).values or {}
        return [dict(t) for t in values.get("history", [])]

    def undo(self, thread_id: str | None = None) -> AgentResult | None:
        """Go back to the turn before the last one (its plan and image); files stay on disk."""
        config = self._config(thread_id)
        values = self.graph.get_state(config).values or {}
        history = list(values.get("history", []))
        if not history:
            return None
        history.pop()
        previous = history[-1] if history else None
        update: dict[str, Any] = {
            **fresh_turn(),
            "history": history,
            "plan": previous["plan"] if previous else None,
            "image_path": previous["paths"].get("image") if previous else None,
            "paths": dict(previous["paths"]) if previous else {},
            "report": list(previous.get("report", [])) if previous else [],
            "strategy_used": previous.get("strategy", "") if previous else "",
            # the verdict and refine passes it was given: undo shows the turn as it was checked
            "verified": previous.get("verified") if previous else None,
            "refine_explanation": list(previous.get("refine") or []) if previous else [],
            "refined_from": previous.get("refined_from", "") if previous else "",
            "status": "done" if previous else "",
            "notes": [
                "undone: back to the previous image" if previous else "undone: the thread is empty again"
            ],
        }
        if previous is not None:
            update["seed"] = int(previous.get("seed", 0))
        with self._turn_lock.held():
            self.graph.update_state(config, update, as_node="finish")
        return self.current(thread_id)

    def set_seed(self, seed: int, thread_id: str | None = None) -> int:
        """Use ``seed`` from the next turn on (kept in the thread, so it survives a restart); the
        seed set (drawn when ``seed`` is -1)."""
        seed = resolve_seed(seed)
        self.seed = seed
        config = self._config(thread_id)
        with self._turn_lock.held():
            if self.graph.get_state(config).values:
                self.graph.update_state(config, {"seed": seed}, as_node="finish")
        return seed

    def set_strategy(self, name: str) -> None:
        """Use strategy ``name`` ("auto" or a registered one) from the next turn on."""
        if name != "auto":
            strategy_options(self.tools, name)  # an unknown name or option fails here, not mid-turn
        self.strategy = name


@contextmanager
def _ctrl_c_cancels(flag: threading.Event) -> Iterator[None]:
    """While a turn runs in the main thread, the first Ctrl-C cancels it, the second interrupts.

    The graph runs its nodes in worker threads: a bare KeyboardInterrupt reaches only the main
    thread, which then waits for the render to end by itself (a minute of CPU after "interrupted").
    Setting the turn's cancel flag instead stops the sampler at its next step. Elsewhere (a web
    worker thread) signals cannot be handled and the caller cancels with :meth:`Agent.cancel`.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
