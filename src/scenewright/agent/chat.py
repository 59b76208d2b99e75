"""``scenewright chat``: a terminal conversation with the agent.

Reads lines from stdin (so it can be scripted or tested by piping), keeps one thread, prints
where each image went, and takes commands: ``/plan``, ``/undo``, ``/seed N`` (``-1``: a random
one), ``/strategy NAME``, ``/load FILE`` (render a plan JSON file), ``/help``, ``/quit``.

A line that cannot be handled is answered with one ``error:`` line and the chat goes on. The exit
code: 0 when the user leaves (``/quit``, or Ctrl-D at a terminal); a script piped in that ends with
a line that failed somewhere exits 2, so its caller sees the failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scenewright.agent.options import add_agent_options, agent_from_args
from scenewright.errors import ScenewrightError
from scenewright.executor.limits import RANDOM_SEED
from scenewright.terminal import printable, show_progress
from scenewright.untrusted import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult
    from scenewright.planner.plan import Plan

HELP = """commands:
  /plan            show the current plan as JSON
  /undo            go back to the previous image and plan
  /seed N          use seed N from the next image on (/seed -1: a random one)
  /strategy NAME   use strategy NAME (auto, vanilla, ...) from the next image on
  /load FILE       render the plan in a JSON file (e.g. an edited plan.json)
  /help            this list
  /quit            leave (Ctrl-D works too)
anything else is a request ("three red circles left of a blue square") or a follow-up."""


def help_text(plan: Plan | None) -> str:
    """``/help``: the commands, then the follow-ups that work on the current scene."""
    from scenewright.agent.edit_help import follow_up_help

    return f"{HELP}\n{follow_up_help(plan)}"


def register(subparsers: Any) -> None:
    """Add ``chat`` to the CLI's subcommands."""
    p = subparsers.add_parser("chat", help="a conversation in the terminal: requests and follow-ups")
    add_agent_options(p, "out/chat")
    p.add_argument("--review", action="store_true", help="show each plan and let me edit it before rendering")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=chat_command)


def chat_command(args: argparse.Namespace) -> int:
    """Entry point of ``scenewright chat``."""
    agent = agent_from_args(args, review=args.review)
    if args.seed == RANDOM_SEED:  # the agent drew it: say which, so it can be given again
        print(f"seed {agent.seed} (drawn for --seed -1; --seed {agent.seed} gives it again)", flush=True)
    progress = show_progress(args.quiet)  # after the agent: its libraries are loaded, so theirs go too
    try:
        return run_chat(agent, sys.stdin, sys.stdout, sys.stderr, progress=progress)
    finally:
        agent.close()


class _Progress:
    """One self-overwriting status line on a terminal; nothing when stderr is not one."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        bar = "#" * int(event.get("percent", 0) / 5)
        line = f"\r[{event.get('node', ''):>8}] {bar:<20} {event.get('percent', 0):5.1f}%  {event.get('message', '')[:60]}"
        self.stream.write(line.ljust(110))
        if event.get("node") == "finish":
            self.stream.write("\r" + " " * 110 + "\r")
        self.stream.flush()


def _read_plan(lines: Any, first: str) -> str:
    """Collect lines until they form one JSON value (a pasted, multi-line plan). A line that is a
    command (``/cancel``, ``/quit``) or empty ends the paste: it is returned as is, so a broken
    paste never swallows the rest of the conversation."""
    text = first
    while True:
        if len(text) > MAX_JSON_BYTES or json_depth(text) > MAX_JSON_DEPTH:
            return text  # never parsed here: the agent refuses it in one line, and the chat goes on
        try:
            json.loads(text)
            return text
        except (json.JSONDecodeError, ValueError):
            more = next(lines, None)
            if more is None:
                return text
            stripped = more.strip()
            if stripped in ("/cancel", "/quit") or not stripped:
                return stripped or text
            text += "\n" + more.rstrip("\n")


def run_chat(agent: Agent, stdin: TextIO, stdout: TextIO, stderr: TextIO, progress: bool = True) -> int:
    """The conversation loop; returns the exit code (see the module doc)."""
    from scenewright.agent.replies import reply  # the planner's modules load on first use

    show = _Progress(stderr, progress)
    interactive = stdin.isatty()

    def say(text: str) -> None:
        print(printable(text), file=stdout, flush=True)

    def report(result: AgentResult) -> None:
        say(reply(result))

    say(f"scenewright chat (thread '{agent.thread_id}', backend {agent.backend_name}); /help for commands")
    from scenewright.executor.limits import seed_from_text
    from scenewright.tools.output import read_plan_file

    lines = iter(stdin.readline, "")
    code = 0
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        raw = next(lines, None)
        if raw is None:
            break
        line = raw.strip()
        if not line:
            continue
        try:
            if line.startswith("/"):
                command, _, rest = line.partition(" ")
                rest = rest.strip()
                if command in ("/quit", "/exit"):
                    return 0  # the user chose to leave; errors were answered as they came
                if command == "/help":
                    say(help_text(agent.current().plan))
                elif command == "/plan":
                    plan = agent.current().plan
                    say(_plan_json(plan.to_json_dict()) if plan else "no plan yet")
                elif command == "/undo":
                    undone = agent.undo()
                    say("nothing to undo" if undone is None else undone.summary())
                elif command == "/seed":
                    seed = agent.set_seed(seed_from_text(rest))
                    drawn = " (drawn at random)" if rest.strip() == "-1" else ""
                    say(f"seed {seed}{drawn} from the next image on")
                elif command == "/strategy":
                    agent.set_strategy(rest or "auto")
                    say(f"strategy {rest or 'auto'} from the next image on")
                elif command == "/load":
                    report(agent.render_plan(read_plan_file(Path(rest).expanduser()), on_event=show))
                else:
                    say(f"unknown command {command}; /help lists them")
                continue
            result = agent.run(line, on_event=show)
            while result.status == "review":
                report(result)
                say("press Enter to render this plan, paste an edited JSON plan, or type /cancel")
                answer_raw = next(lines, None)
                answer = (answer_raw or "").strip()
                if answer_raw is None or answer == "/cancel":
                    say("plan discarded")
                    break
                plan_text = _read_plan(lines, answer) if answer.startswith("{") else None
                if plan_text in ("/cancel", "/quit"):
                    say("plan discarded")
                    if plan_text == "/quit":
                        return 0
                    break
                result = agent.resume(plan_text, on_event=show)
            else:
                report(result)
            if result.status in ("invalid", "failed"):
                code = 2
        except (ScenewrightError, ValueError, OSError) as error:
            say(one_line_error(error))
            code = 2
    return 0 if interactive else code


def one_line_error(error: BaseException) -> str:
    """``error`` as the one ``error:`` line the chat prints: a multi-line message folded into one,
    and an error that is not ours named by its type, so it reads as what it is."""
    text = " ".join(str(error).split())
    if not isinstance(error, ScenewrightError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return f"error: {text}"


def _plan_json(data: Any) -> str:
    from scenewright.agent.followup import plan_json  # the planner's modules load on first use

    return plan_json(data)
