"""One browser session of the web studio, kept on the server: its conversation, its controls and
the requests waiting for the model.

Gradio hands an event the values its inputs had when it was triggered; a request queued behind a
render would then answer with a conversation that misses the render before it, and two requests
typed quickly would both see the old seed. Keeping the session here (keyed by the thread id the
page gets on load) lets queued requests run in order, each on the state the one before left.
Commands typed in the box (``/undo``, ``/seed N``, ...) are answered as in the terminal chat.

The thread id is also the page's address (``?thread=...``): a reload, or a server started again on
the same ``--history``, finds the session here or rebuilds its conversation from the thread's turns
in the history store, and its files keep going to the thread's own folder.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from scenewright.errors import InvalidInputError

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult

MAX_SESSIONS = 256  # sessions kept in memory; the oldest is forgotten first (its files stay)
THUMB_SIDE = 192
_PATH_LINE = re.compile(r"^(?:image|plan|overlay|attention): .*$\n?", re.MULTILINE)
_KEPT_LINE = re.compile(r"^kept the last (?:good )?image: .*$", re.MULTILINE)

Message = dict[str, Any]


@dataclass
class Session:
    """What one browser tab has: its thread, controls, conversation and waiting requests."""

    thread: str
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    strategy: str = "auto"
    negative_prompt: str = ""
    height: int | None = None
    width: int | None = None
    backend: str = ""  # "" : the server's
    refine_rounds: int = 0
    conversation: list[Message] = field(default_factory=list)
    pending: deque[str] = field(default_factory=deque)


class Sessions:
    """The server's sessions, at most :data:`MAX_SESSIONS` (least recently used dropped)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # The agent's settings as started: a render changes them for its own turn only, and a tab
        # opened meanwhile must not take that turn's steps for its defaults.
        self._defaults = (int(agent.seed or 0), dict(agent.settings), agent.strategy)
        self._refine_rounds = agent.tools.max_refine_rounds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, thread: str) -> Session:
        with self._lock:
            session = self._sessions.get(thread)
            if session is None:
                seed, settings, strategy = self._defaults
                session = Session(
                    thread,
                    seed=seed,
                    steps=settings.get("steps"),
                    guidance=settings.get("guidance"),
                    strategy=strategy,
                    negative_prompt=str(settings.get("negative_prompt") or ""),
                    height=settings.get("height"),
                    width=settings.get("width"),
                    backend=self.agent.backend_name,
                    refine_rounds=self._refine_rounds,
                )
                restore(self.agent, session)
                self._sessions[thread] = session
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(thread)
            return session


def restore(agent: Agent, session: Session) -> None:
    """A session the server does not hold yet (a reload after a restart on the same history):
    its conversation rebuilt from the thread's rendered turns, and the thread's seed."""
    from scenewright.agent.core import rendered_with

    history = agent.history(session.thread)
    if not history:
        return
    for turn in history:
        said = turn.get("request") or "(rendered the edited plan)"
        verified = turn.get("verified")
        verdict = (
            "not verified"
            if verified is None
            else ("matches the plan" if verified else "differs from the plan")
        )
        what = rendered_with(turn.get("strategy", ""), turn.get("refined_from", ""), turn.get("refine") or [])
        answer = f"rendered with {what}, seed {turn.get('seed', 0)}: {verdict}"
        session.conversation.append({"role": "user", "content": said})
        session.conversation.append({"role": "assistant", "content": answer})
        thumb = thumbnail((turn.get("paths") or {}).get("image", ""))
        if thumb is not None:
            session.conversation.append({"role": "assistant", "content": {"path": thumb, "alt_text": what}})
    session.seed = agent.current(session.thread).seed


@contextmanager
def session_settings(agent: Agent, session: Session) -> Iterator[None]:
    """The session's sampling settings, refine rounds and backend on the agent for one turn
    (renders run one at a time, in the one queue slot every render shares, so no other turn sees
    them). A backend loads once per process and stays loaded (see ``core._load_backend``)."""
    before = dict(agent.settings)
    rounds, backend = agent.tools.max_refine_rounds, (agent.backend_name, agent._backend)
    agent.settings.update(
        steps=session.steps,
        guidance=session.guidance,
        negative_prompt=session.negative_prompt,
        height=session.height,
        width=session.width,
    )
    agent.tools.max_refine_rounds = session.refine_rounds
    if session.backend and session.backend != agent.backend_name:
        agent.backend_name, agent._backend = session.backend, None
    try:
        yield
    finally:
        agent.settings.clear()
        agent.settings.update(before)
        agent.tools.max_refine_rounds = rounds
        agent.backend_name, agent._backend = backend


def thumbnail(image_path: str) -> str | None:
    """A picture for the conversation: the image scaled (pixels kept sharp) to a readable size,
    written beside it once."""
    source = Path(image_path)
    if not source.is_file():
        return None
    target = source.with_name(f"{source.stem}-thumb.png")
    if not target.is_file():
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        scale = THUMB_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
        image.resize(size, resample).save(target)
    return str(target)


def answer_messages(result: AgentResult) -> list[Message]:
    """The assistant's messages for a turn: the words (no file paths), then the picture."""
    from scenewright.agent.replies import reply

    text = _KEPT_LINE.sub("kept the last image", _PATH_LINE.sub("", reply(result))).strip()
    messages: list[Message] = [{"role": "assistant", "content": text or result.status}]
    if result.status == "done" and result.paths.get("image"):
        thumb = thumbnail(result.paths["image"])
        if thumb is not None:
            alt = f"{result.strategy}, seed {result.seed}"
            messages.append({"role": "assistant", "content": {"path": thumb, "alt_text": alt}})
    return messages


def cancel_session(agent: Agent, session: Session) -> str:
    """Cancel: the tab's running render stops at its next step and what waits is dropped."""
    dropped = len(session.pending)
    session.pending.clear()
    running = agent.cancel(session.thread)
    if not running and not dropped:
        return "nothing is rendering"
    said = "cancelling: the render stops at its next step" if running else "cancelled"
    return said + (f"; dropped {dropped} waiting request(s)" if dropped else "")


@dataclass
class CommandReply:
    """What a command typed in the web box did: the answer, and a turn when it made one."""

    text: str
    result: AgentResult | None = None


def run_command(agent: Agent, session: Session, line: str, strategies: list[str]) -> CommandReply:
    """``/undo``, ``/help``, ``/plan``, ``/seed N``, ``/strategy NAME`` as in the terminal chat;
    ``/load`` is refused (the server's files are not the browser's: use the plan editor).
    Bad values raise :class:`InvalidInputError` (one line)."""
    command, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    if command == "/help":
        from scenewright.agent.chat import HELP
        from scenewright.agent.edit_help import follow_up_help

        web = HELP.replace(
            "  /load FILE       render the plan in a JSON file (e.g. an edited plan.json)\n", ""
        )
        web = web.replace("  /quit            leave (Ctrl-D works too)\n", "")
        return CommandReply(f"{web}\n{follow_up_help(agent.current(session.thread).plan)}")
    if command == "/plan":
        from scenewright.agent.followup import plan_json

        plan = agent.current(session.thread).plan
        return CommandReply(f"```json\n{plan_json(plan.to_json_dict())}\n```" if plan else "no plan yet")
    if command == "/undo":
        undone = agent.undo(session.thread)
        if undone is None:
            return CommandReply("nothing to undo")
        session.seed = undone.seed
        return CommandReply("undone: back to the previous image and plan", undone)
    if command == "/seed":
        from scenewright.executor.limits import seed_from_text

        drawn = rest.strip() == "-1"
        session.seed = seed_from_text(rest)
        note = " (drawn for /seed -1)" if drawn else ""
        return CommandReply(f"seed {session.seed}{note} from the next image on")
    if command == "/strategy":
        name = rest or "auto"
        if name != "auto" and name.partition(":")[0] not in strategies:
            raise InvalidInputError(
                "strategy", f"unknown strategy '{name}'", f"use one of {', '.join(strategies)}"
            )
        if name != "auto":
            from scenewright.agent.nodes import strategy_options

            strategy_options(agent.tools, name)  # a bad option fails here, not mid-render
        session.strategy = name
        return CommandReply(f"strategy {name} from the next image on")
    if command == "/load":
        return CommandReply(
            "/load reads files on the server, so it is off here; edit the plan in the plan editor on the right"
        )
    if command in ("/quit", "/exit"):
        return CommandReply("nothing to quit here: close the tab to leave")
    return CommandReply(f"unknown command {command}; /help lists them")
