"""``scenewright serve``: a web studio (Gradio) over the agent, on 127.0.0.1 by default.

Each browser tab is its own conversation thread, named in the page's address (``?thread=...``),
so a reload reopens it (from the history store when the server was restarted on the same
``--history``). The page shows the conversation (with a thumbnail of every image), the whole
image, the layout overlay and the strip of attention maps (scaled to fit, never cropped), the plan
as editable JSON, a gallery of every turn (select one to open it in the main view; download), the
seed, steps, guidance, strategy, size, backend, refine rounds and negative prompt of the next
render, an Undo button, a box editor (drag the plan's boxes on the image, then render them) and a
side-by-side of two strategies on the same plan and seed. Commands typed in the box (``/undo``,
``/seed N``, ``/help`` ...) work as in the terminal chat.

Every event that renders shares one queue slot (and the model's render lock backs it): a request
sent while an image renders waits its turn (the status line says so) instead of being dropped or
competing for the model; "Cancel" stops this tab's render at its next step and drops what waits.
Files are served only from the output folder, and uploads are bounded (:data:`MAX_UPLOAD`).
"""

from __future__ import annotations

import argparse
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenewright.agent.options import add_agent_options, agent_from_args
from scenewright.agent.web_page import (
    CSS,
    KEEP_THREAD_IN_URL,
    url_thread,
    with_page_thread,
)
from scenewright.agent.web_text import as_text, shown
from scenewright.agent.web_turns import gallery as turn_gallery
from scenewright.agent.web_turns import picture, shown_turns, studio_backends, turn_result

if TYPE_CHECKING:
    import gradio as gr

    from scenewright.agent.core import Agent, AgentResult
    from scenewright.agent.web_session import Session

EXAMPLE = "three red circles left of a blue square, a green triangle on the right"
# Nothing on the page takes an upload, but Gradio's upload route is open to any client: bound it.
MAX_UPLOAD = "1mb"


def register(subparsers: Any) -> None:
    """Add ``serve`` to the CLI's subcommands."""
    p = subparsers.add_parser("serve", help="a web studio (Gradio) on 127.0.0.1")
    add_agent_options(p, "out/web")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--review", action="store_true", help="stop after planning so the plan can be edited first"
    )
    p.set_defaults(handler=serve_command)


def launch_options(out_dir: str | Path) -> dict[str, Any]:
    """What ``launch`` needs to serve files from ``out_dir`` only and to bound uploads."""
    return {"allowed_paths": [str(Path(out_dir).resolve())], "max_file_size": MAX_UPLOAD, "css": CSS}


def launch_in_background(app: Any, out_dir: str | Path, port: int) -> str:
    """Serve ``app`` on 127.0.0.1:``port`` from a background thread (tests, the screenshot
    script) with the same file and upload limits as ``serve``; returns the URL."""
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(out_dir),
    )
    return f"http://127.0.0.1:{port}"


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of ``scenewright serve``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no usage pings
    agent = agent_from_args(args, review=args.review)
    app = build_app(agent)
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    try:
        app.launch(server_name=args.host, server_port=args.port, **launch_options(args.out))
    finally:
        agent.close()
    return 0


def _plan_text(result: AgentResult) -> str:
    if result.status == "review" and result.pending_plan is not None:
        return _plan_json(result.pending_plan)
    return _plan_json(result.plan.to_json_dict()) if result.plan else ""


def _errors_text(result: AgentResult) -> str:
    if not result.errors or result.status == "help":
        return ""
    return "**The plan was not rendered:**\n\n" + "\n".join(f"- {as_text(e)}" for e in result.errors)


def _status(result: AgentResult) -> str:
    return {
        "review": "Edit the plan on the right, then press **Render this plan**.",
        "invalid": "**not rendered**: see the errors under the plan; the last good image stays.",
        "failed": "**failed**: see the conversation; the last good image stays.",
        "help": "**help**: nothing was rendered; the conversation says why and lists the changes that work.",
        "cancelled": "**cancelled**: the last good image stays.",
    }.get(result.status, f"**{result.status}**" + _verdict(result))


def _verdict(result: AgentResult) -> str:
    """What a finished render's status adds: never "done" alone when the image differs."""
    if result.status != "done":
        return ""
    from scenewright.agent.object_report import result_summary

    return f": {result_summary(result)}"


def build_app(agent: Agent) -> gr.Blocks:
    """The Gradio app for ``agent``; launch it with ``.launch(**launch_options(out))`` (queue
    already enabled)."""
    import gradio as gr

    from scenewright.agent.bounds import MAX_NEGATIVE_CHARS, MAX_REFINE_ROUNDS
    from scenewright.agent.nodes import available_strategies
    from scenewright.agent.object_report import result_summary
    from scenewright.agent.web_boxes import checked_annotator, editor_value, plan_from_boxes
    from scenewright.agent.web_session import (
        Sessions,
        answer_messages,
        cancel_session,
        run_command,
        session_settings,
    )
    from scenewright.errors import ScenewrightError
    from scenewright.tools.overlay import upscale

    sessions = Sessions(agent)
    strategies = ["auto", *[s for s in available_strategies(agent.tools) if s != "auto"]]
    defaults = agent.load_backend().defaults  # the controls show what a render will use
    backends = studio_backends(agent.backend_name)
    busy = threading.Lock()  # held while a render event runs: tells a new request that it waits

    with gr.Blocks(title="scenewright") as app:
        # The tab's thread id, held by the page (a State lives on the server, where the page's
        # own code cannot read it to put it in the address).
        thread = gr.Textbox(None, visible=False, elem_id="thread")
        gr.Markdown(
            "## scenewright\nAsk for a scene, then follow up: *make it four circles*, *make the "
            "square yellow*, *make the circles bigger*, *remove the triangle*; `/help` lists more."
        )
        with gr.Row():
            with gr.Column(scale=5):
                chat = gr.Chatbot(label="conversation", height=460, elem_id="conversation", buttons=["copy"])
                box = gr.Textbox(label="request", placeholder=EXAMPLE, elem_id="request", lines=1)
                with gr.Row():
                    send_button = gr.Button("Send", variant="primary", elem_id="send")
                    undo_button = gr.Button("Undo", elem_id="undo")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown("", elem_id="status")
                with gr.Row():
                    seed = gr.Number(
                        label="seed", value=int(agent.seed or 0), precision=0, minimum=0, elem_id="seed"
                    )
                    steps = gr.Number(
                        label="steps", value=agent.settings.get("steps") or defaults.steps, precision=0,
                        minimum=1, maximum=1000, elem_id="steps",
                    )  # fmt: skip
                    guidance = gr.Number(
                        label="guidance",
                        value=agent.settings.get("guidance") or defaults.guidance,
                        minimum=0,
                        elem_id="guidance",
                    )
                    strategy = gr.Dropdown(
                        strategies, value=agent.strategy, label="strategy", elem_id="strategy"
                    )
                with gr.Row():
                    width = gr.Number(
                        label="width", value=agent.settings.get("width") or defaults.width, precision=0,
                        minimum=1, elem_id="width",
                    )  # fmt: skip
                    height = gr.Number(
                        label="height", value=agent.settings.get("height") or defaults.height, precision=0,
                        minimum=1, elem_id="height",
                    )  # fmt: skip
                    backend = gr.Dropdown(
                        backends, value=agent.backend_name, label="backend", elem_id="backend"
                    )
                    refine = gr.Number(
                        label=f"refine rounds (default {agent.tools.max_refine_rounds})",
                        value=agent.tools.max_refine_rounds, precision=0, minimum=0,
                        maximum=MAX_REFINE_ROUNDS, elem_id="refine-rounds",
                    )  # fmt: skip
                negative = gr.Textbox(
                    label="negative prompt",
                    value=str(agent.settings.get("negative_prompt") or ""),
                    elem_id="negative",
                    lines=1,
                )
            with gr.Column(scale=4):
                image = gr.Image(
                    label="image",
                    type="pil",
                    interactive=False,
                    elem_id="image",
                    buttons=["download", "fullscreen"],
                )
                overlay = gr.Image(
                    label="layout overlay", type="pil", interactive=False, elem_id="overlay",
                    buttons=["download", "fullscreen"],
                )  # fmt: skip
                maps = gr.Image(
                    label="attention maps", type="pil", interactive=False, elem_id="maps",
                    buttons=["download", "fullscreen"],
                )  # fmt: skip
            with gr.Column(scale=4):
                plan = gr.Code(
                    language="json", interactive=True, label="plan (editable JSON)", elem_id="plan",
                    lines=24, wrap_lines=True,
                )  # fmt: skip
                errors = gr.Markdown("", elem_id="plan-errors")
                render_button = gr.Button("Render this plan", elem_id="render")
        gallery = gr.Gallery(
            label="every turn (select one to open it above, or download)", elem_id="turns", columns=8,
            height=220, preview=False, fit_columns=False, object_fit="contain", interactive=False,
            buttons=["download", "download_all", "fullscreen"],
        )  # fmt: skip
        with gr.Tabs():
            with gr.Tab("Box editor", elem_id="box-tab"):
                gr.Markdown(
                    "Drag or resize the plan's boxes (draw a box and pick its label to add an instance, "
                    "delete one to remove it), then render them on the same seed."
                )
                boxes = checked_annotator(
                    None, label="boxes", elem_id="boxes", sources=None, image_type="numpy",
                    show_clear_button=False, show_remove_button=True, use_default_label=True, height=420,
                )  # fmt: skip
                boxes_button = gr.Button("Render these boxes", elem_id="render-boxes")
            with gr.Tab("Compare strategies", elem_id="compare-tab"):
                with gr.Row():
                    left_name = gr.Dropdown(strategies, value="vanilla", label="left", elem_id="compare-left")
                    right_name = gr.Dropdown(
                        strategies, value="regional" if "regional" in strategies else strategies[-1],
                        label="right", elem_id="compare-right",
                    )  # fmt: skip
                    compare_button = gr.Button("Compare on this plan and seed", elem_id="compare")
                with gr.Row():
                    left_image = gr.Image(
                        label="left", type="pil", interactive=False, elem_id="compare-left-image"
                    )
                    right_image = gr.Image(
                        label="right", type="pil", interactive=False, elem_id="compare-right-image"
                    )
                compare_text = gr.Markdown("", elem_id="compare-result")

        views = [chat, box, image, overlay, maps, plan, errors, status, gallery, seed, boxes, thread]

        def show_turn(update: dict[Any, Any], result: AgentResult) -> None:
            """A rendered turn's pictures and plan in the main view."""
            if result.image is not None:
                update[image] = upscale(result.image, 384)
            update[overlay] = picture(result.paths, "overlay")
            update[maps] = picture(result.paths, "attention")
            if result.plan is not None:
                update[plan] = _plan_json(result.plan.to_json_dict())
                update[boxes] = editor_value(result.plan.to_json_dict(), result.image)

        def view(session: Session, result: AgentResult | None) -> dict[Any, Any]:
            """Everything a finished turn (or command) changes on the page."""
            update: dict[Any, Any] = {
                chat: shown(session.conversation),
                seed: session.seed,
                thread: session.thread,
            }
            if result is None:
                return update
            update[status] = _status(result)
            update[errors] = _errors_text(result)
            if result.image is not None and result.status == "done":
                show_turn(update, result)
            if result.status == "review":
                update[plan] = _plan_text(result)
            update[gallery] = turn_gallery(agent, session.thread)
            return update

        def drive(session: Session, items: Iterator[Any]) -> Iterator[dict[Any, Any]]:
            """Stream a turn: progress on the status line, then the finished view."""
            with busy, session_settings(agent, session):
                for item in items:
                    if isinstance(item, dict):
                        line = f"`{item.get('node', '')}` {item.get('percent', 0):.0f}% {item.get('message', '')}"
                        waiting = len(session.pending)
                        yield {status: line + (f" ({waiting} more waiting)" if waiting else "")}
                    else:
                        session.seed = item.seed if item.status == "done" else session.seed
                        session.conversation.extend(answer_messages(item))
                        yield view(session, item)

        def session_of(thread_id: str | None) -> Session:
            """The tab's session (a new one when the page has not said which yet)."""
            return sessions.get(url_thread(thread_id) or uuid.uuid4().hex)

        def accept(message: str, thread_id: str | None, *values: Any) -> dict[Any, Any]:
            """Take a request at once (never dropped): shown in the conversation, then queued.
            The controls' values come with it, so a value typed just before sending counts even
            when its own change event has not landed yet (an invalid one is answered there)."""
            session = session_of(thread_id)
            for (_, name, check, cast, _), value in zip(controls, values, strict=False):
                if value is not None and check(value):
                    setattr(session, name, cast(value))
            if not message.strip():
                return {box: "", thread: session.thread}
            session.conversation.append({"role": "user", "content": message})
            session.pending.append(message)
            waiting = "waiting for the render before it" if busy.locked() else "starting"
            update = {chat: shown(session.conversation), box: "", thread: session.thread}
            return {**update, status: f"**queued**: {waiting}"}

        def process(thread_id: str | None) -> Iterator[dict[Any, Any]]:
            """Answer the oldest waiting request of this tab: a command or a turn.

            One request per event, never a loop over all that wait: Gradio streams a generator's
            later outputs as diffs against its own previous yield, and ``accept`` (unqueued)
            changes the conversation in between, so a second conversation yield in one event
            would be applied to a value it was not computed from (the page shows it blank)."""
            session = session_of(thread_id)
            if not session.pending:
                return  # cancelled while it waited
            message = session.pending.popleft()
            if message.strip().startswith("/"):
                try:
                    answered = run_command(agent, session, message, strategies)
                except ScenewrightError as error:
                    session.conversation.append({"role": "assistant", "content": f"error: {error}"})
                    yield {**view(session, None), status: "**error**: see the conversation"}
                    return
                session.conversation.append({"role": "assistant", "content": answered.text})
                update = view(session, answered.result)
                yield {**update, strategy: session.strategy, status: update.get(status, "**done**")}
                return
            yield from drive(
                session,
                agent.stream(message, thread_id=session.thread, seed=session.seed, strategy=session.strategy),
            )

        def render(plan_text: str, thread_id: str | None) -> Iterator[dict[Any, Any]]:
            session = session_of(thread_id)
            session.conversation.append({"role": "user", "content": "(rendered the edited plan)"})
            pending = agent.current(session.thread).status == "review"
            items = (
                agent.stream_resume(plan_text, thread_id=session.thread)
                if pending
                else agent.stream_plan(
                    plan_text, thread_id=session.thread, seed=session.seed, strategy=session.strategy
                )
            )
            yield from drive(session, items)

        def render_boxes(value: dict[str, Any] | None, thread_id: str | None) -> Iterator[dict[Any, Any]]:
            session = session_of(thread_id)
            current = agent.current(session.thread).plan
            try:
                data = plan_from_boxes(current.to_json_dict() if current else {}, value)
            except ScenewrightError as error:
                yield {errors: f"**The boxes were not rendered:**\n\n- `{error}`", status: "**not rendered**"}
                return
            session.conversation.append({"role": "user", "content": "(rendered the dragged boxes)"})
            yield from drive(
                session,
                agent.stream_plan(
                    data, thread_id=session.thread, seed=session.seed, strategy=session.strategy
                ),
            )

        def undo(thread_id: str | None) -> dict[Any, Any]:
            session = session_of(thread_id)
            session.conversation.append({"role": "user", "content": "/undo"})
            session.pending.append("/undo")
            return {chat: shown(session.conversation), thread: session.thread}

        def compare(thread_id: str | None, left: str, right: str) -> Iterator[dict[Any, Any]]:
            """Both strategies on the current plan and seed, each in a thread of its own (the
            conversation's history stays as it is)."""
            session = session_of(thread_id)
            current = agent.current(session.thread).plan
            if current is None:
                yield {
                    compare_text: "ask for a scene first: the comparison renders its plan",
                    thread: session.thread,
                }
                return
            lines = []
            with busy, session_settings(agent, session):
                for side, name, target in (("left", left, left_image), ("right", right, right_image)):
                    result = None
                    for item in agent.stream_plan(
                        current.to_json_dict(),
                        thread_id=f"{session.thread}-compare-{side}",
                        seed=session.seed,
                        strategy=name,
                    ):
                        if isinstance(item, dict):
                            yield {
                                compare_text: f"{side} ({name}): {item.get('percent', 0):.0f}% {item.get('message', '')}"
                            }
                        else:
                            result = item
                    assert result is not None
                    said = (
                        result_summary(result)
                        if result.status == "done"
                        else f"{result.status}: {'; '.join(result.errors)}"
                    )
                    lines.append(
                        f"**{side}: {as_text(result.rendered_with() or name)}**, seed {session.seed}: "
                        + as_text(said)
                    )
                    update: dict[Any, Any] = {compare_text: "\n\n".join(lines)}
                    if result.image is not None and result.status == "done":
                        update[target] = upscale(result.image, 384)
                    yield update

        def refresh(thread_id: str | None) -> dict[Any, Any]:
            """The conversation, seed, strategy and gallery as the server holds them now.

            Run (unqueued) after every render event: the page applies each event's last outputs
            when it has finished with them, and an event carrying pictures can be applied after a
            later, quicker one (a command answered while a turn's images were still being
            placed), which would put back a conversation without the later answer. What the
            server holds only grows, so the refresh after the last event leaves it whole."""
            if not url_thread(thread_id):
                return {chat: gr.skip()}
            session = session_of(thread_id)
            return {
                chat: shown(session.conversation),
                seed: session.seed,
                strategy: session.strategy,
                gallery: turn_gallery(agent, session.thread),
            }

        def reopen(thread_id: str | None) -> dict[Any, Any]:
            """A page opened on a thread's address (a reload): its conversation, controls, latest
            image and gallery, from the server's session or the history store. A page without a
            thread in its address changes nothing: its first event makes one."""
            if not url_thread(thread_id):
                return {status: gr.skip()}
            session = session_of(thread_id)
            update = view(session, None)
            rendered = shown_turns(agent, session.thread)
            if rendered:  # the latest image, even when a later turn was refused
                show_turn(update, turn_result(rendered[-1][1], session.thread))
            update[gallery] = turn_gallery(agent, session.thread)
            update.update(
                {
                    status: f"**reopened** conversation {session.thread}" if session.conversation else "",
                    strategy: session.strategy,
                    steps: session.steps if session.steps is not None else steps.value,
                    guidance: session.guidance if session.guidance is not None else guidance.value,
                    negative: session.negative_prompt,
                    width: session.width if session.width is not None else width.value,
                    height: session.height if session.height is not None else height.value,
                    backend: session.backend or agent.backend_name,
                    refine: session.refine_rounds,
                }
            )
            return update

        def open_turn(thread_id: str | None, selected: gr.SelectData) -> dict[Any, Any]:
            """A gallery turn in the main view: its image, overlay, maps and plan (render the plan
            to continue from it; follow-ups still edit the latest turn)."""
            if not url_thread(thread_id) or not isinstance(selected.index, int):
                return {status: gr.skip()}
            turns = shown_turns(agent, str(thread_id))
            if not 0 <= selected.index < len(turns):
                return {status: gr.skip()}
            number, turn = turns[selected.index]
            result = turn_result(turn, str(thread_id))
            update: dict[Any, Any] = {}
            show_turn(update, result)
            update[status] = (
                f"**turn {number}** of {len(agent.history(str(thread_id)))} shown: "
                + as_text(f"{result.rendered_with()}, seed {result.seed}")
                + "; *Render this plan* continues from it, follow-ups edit the latest turn"
            )
            return update

        # Gradio hands the selection to the parameter whose resolved annotation is SelectData; this
        # module imports gradio only here (the CLI starts without it), so the string annotation
        # cannot be resolved from the module: give the resolved one.
        open_turn.__annotations__["selected"] = gr.SelectData

        def cancel(thread_id: str | None) -> str:
            return (
                cancel_session(agent, session_of(thread_id))
                if url_thread(thread_id)
                else "nothing is rendering"
            )

        def setter(
            name: str, check: Callable[[Any], bool], cast: Callable[[Any], Any], allowed: str
        ) -> Callable[..., Any]:
            """A control's change: the tab's session takes a value a render can use; another is
            refused on the status line in one line, naming the control and what it takes (the
            render's own checks, e.g. a size the model cannot draw, still answer in the chat)."""

            def set_value(value: Any, thread_id: str | None) -> Any:
                if not url_thread(thread_id):
                    return gr.skip()
                if value is None or not check(value):
                    kept = getattr(session_of(thread_id), name)
                    return f"**{name.replace('_', ' ')}**: " + as_text(
                        f"{value!r} is not {allowed}; the next render keeps {kept!r}"
                    )
                setattr(session_of(thread_id), name, cast(value))
                return gr.skip()

            return set_value

        # The tab's thread is named by the page itself, in its address (``with_page_thread``), not
        # by a load event: a load answered after the first request would switch the tab to a new
        # thread and lose that request's turn. The load only reopens a thread the address named
        # when the page opened (a reload).
        queued: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "render"}
        # A request is taken at once (never dropped, even mid-render), then waits in the one
        # queue slot every render shares, in the order it was sent.
        settled = [chat, seed, strategy, gallery]
        controls: list[tuple[Any, str, Callable[[Any], bool], Callable[[Any], Any], str]] = [
            (seed, "seed", lambda v: 0 <= v < 2**63, int, "a whole number from 0"),
            (steps, "steps", lambda v: 1 <= v <= 1000, int, "1 to 1000"),
            (guidance, "guidance", lambda v: v >= 0, float, "0 or more"),
            (strategy, "strategy", bool, str, "a strategy"),
            (width, "width", lambda v: v >= 1, int, "a size in pixels"),
            (height, "height", lambda v: v >= 1, int, "a size in pixels"),
            (backend, "backend", lambda v: v in backends, str, f"one of {', '.join(backends)}"),
            (refine, "refine_rounds", lambda v: 0 <= v <= MAX_REFINE_ROUNDS, int, f"0 to {MAX_REFINE_ROUNDS}"),
            (
                negative, "negative_prompt", lambda v: isinstance(v, str) and len(v) <= MAX_NEGATIVE_CHARS,
                str, f"at most {MAX_NEGATIVE_CHARS} characters",
            ),
        ]  # fmt: skip
        two = with_page_thread(2, 1)
        taken = [box, thread, *(control for control, *_ in controls)]
        for trigger in (send_button.click, box.submit):
            trigger(
                accept,
                taken,
                [chat, box, status, thread],
                queue=False,
                trigger_mode="multiple",
                js=with_page_thread(len(taken), 1),
            ).then(None, [thread], None, js=KEEP_THREAD_IN_URL).then(
                process, [thread], [*views, strategy], trigger_mode="multiple", **queued
            ).then(refresh, [thread], settled, queue=False, trigger_mode="multiple")
        undo_button.click(
            undo, [thread], [chat, thread], queue=False, trigger_mode="multiple", js=with_page_thread(1, 0)
        ).then(None, [thread], None, js=KEEP_THREAD_IN_URL).then(
            process, [thread], [*views, strategy], trigger_mode="multiple", **queued
        ).then(refresh, [thread], settled, queue=False, trigger_mode="multiple")
        render_button.click(render, [plan, thread], views, trigger_mode="multiple", js=two, **queued).then(
            refresh, [thread], settled, queue=False, trigger_mode="multiple"
        ).then(None, [thread], None, js=KEEP_THREAD_IN_URL)
        boxes_button.click(
            render_boxes, [boxes, thread], views, trigger_mode="multiple", js=two, **queued
        ).then(refresh, [thread], settled, queue=False, trigger_mode="multiple").then(
            None, [thread], None, js=KEEP_THREAD_IN_URL
        )
        compare_button.click(
            compare,
            [thread, left_name, right_name],
            [left_image, right_image, compare_text, thread],
            js=with_page_thread(3, 0),
            **queued,
        )
        gallery.select(open_turn, [thread], [image, overlay, maps, plan, boxes, status], queue=False)
        # Not queued: they must act while this tab's render holds the queue slot.
        cancel_button.click(cancel, [thread], [status], queue=False, js=with_page_thread(1, 0))
        for control, name, check, cast, allowed in controls:
            control.change(
                setter(name, check, cast, allowed), [control, thread], [status], queue=False,
                js=with_page_thread(2, 1),
            )  # fmt: skip
        app.load(reopen, [thread], [*views, strategy, steps, guidance, negative, width, height, backend, refine],
                 js="(thread) => [thread || new URLSearchParams(window.location.search).get('thread')]",
                 queue=False)  # fmt: skip
    app.queue(default_concurrency_limit=1, max_size=64)
    return app


def _plan_json(data: Any) -> str:
    from scenewright.agent.followup import plan_json  # the planner's modules load on first use

    return plan_json(data)
