"""``scenewright serve``: a web chat (Gradio) over the agent, on 127.0.0.1 by default.

Each browser session is its own conversation thread. The page shows the conversation, the
image, the layout overlay, the attention maps, and the plan as editable JSON: editing it and
pressing "Render this plan" re-renders; a plan that does not validate gets its errors, by field,
next to the editor while the last good image stays. Every event that renders shares one queue
slot (and the model's render lock backs it), so concurrent requests wait their turn instead of
competing for the model; "Cancel" stops this session's render at its next step.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenewright.agent.options import add_agent_options, agent_from_args

if TYPE_CHECKING:
    import gradio as gr

    from scenewright.agent.core import Agent, AgentResult

EXAMPLE = "three red circles left of a blue square, a green triangle on the right"


def register(subparsers: Any) -> None:
    """Add ``serve`` to the CLI's subcommands."""
    p = subparsers.add_parser("serve", help="a web chat (Gradio) on 127.0.0.1")
    add_agent_options(p, "out/web")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--review", action="store_true", help="stop after planning so the plan can be edited first"
    )
    p.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of ``scenewright serve``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no usage pings
    agent = agent_from_args(args, review=args.review)
    app = build_app(agent)
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    try:
        app.launch(
            server_name=args.host, server_port=args.port, allowed_paths=[str(Path(args.out).resolve())]
        )
    finally:
        agent.close()
    return 0


def _plan_text(result: AgentResult) -> str:
    if result.status == "review" and result.pending_plan is not None:
        return _plan_json(result.pending_plan)
    return _plan_json(result.plan.to_json_dict()) if result.plan else ""


def _errors_text(result: AgentResult) -> str:
    if not result.errors:
        return ""
    return "**The plan was not rendered:**\n\n" + "\n".join(f"- `{e}`" for e in result.errors)


def _maps(result: AgentResult) -> list[Any]:
    sheet = result.paths.get("attention")
    return [sheet] if sheet and Path(sheet).is_file() else []


def _overlay(result: AgentResult) -> Any:
    from PIL import Image

    path = result.paths.get("overlay")
    if not path or not Path(path).is_file():
        return None
    with Image.open(path) as opened:
        return opened.convert("RGB")


def build_app(agent: Agent) -> gr.Blocks:
    """The Gradio app for ``agent``; launch it with ``.launch()`` (queue already enabled)."""
    import gradio as gr

    from scenewright.tools.overlay import upscale

    def finish(
        result: AgentResult, history: list[dict[str, Any]], thread: str, clear_box: bool
    ) -> tuple[Any, ...]:
        history = [*history, {"role": "assistant", "content": result.summary() or result.status}]
        status = {
            "review": "Edit the plan on the right, then press **Render this plan**.",
            "invalid": "**not rendered**: see the errors under the plan; the last good image stays.",
            "failed": "**failed**: see the conversation; the last good image stays.",
        }.get(result.status, f"**{result.status}**")
        return (
            history,
            "" if clear_box else gr.skip(),
            upscale(result.image, 384) if result.image is not None else gr.skip(),
            _overlay(result) if result.status == "done" else gr.skip(),
            _maps(result) if result.status == "done" else gr.skip(),
            _plan_text(result) if result.status in ("done", "review") else gr.skip(),
            _errors_text(result),
            status,
            thread,
        )

    def progress(event: dict[str, Any], history: list[dict[str, Any]], thread: str) -> tuple[Any, ...]:
        line = f"`{event.get('node', '')}` {event.get('percent', 0):.0f}% {event.get('message', '')}"
        skip = gr.skip()
        return (history, skip, skip, skip, skip, skip, skip, line, thread)

    def send(
        message: str, history: list[dict[str, Any]] | None, thread: str | None
    ) -> Iterator[tuple[Any, ...]]:
        thread = thread or uuid.uuid4().hex
        history = [*(history or []), {"role": "user", "content": message}]
        if not message.strip():
            return
        for item in agent.stream(message, thread_id=thread):
            if isinstance(item, dict):
                yield progress(item, history, thread)
            else:
                yield finish(item, history, thread, clear_box=True)

    def render(
        plan_text: str, history: list[dict[str, Any]] | None, thread: str | None
    ) -> Iterator[tuple[Any, ...]]:
        thread = thread or uuid.uuid4().hex
        history = [*(history or []), {"role": "user", "content": "(rendered the edited plan)"}]
        pending = agent.current(thread).status == "review"
        items = (
            agent.stream_resume(plan_text, thread_id=thread)
            if pending
            else agent.stream_plan(plan_text, thread_id=thread)
        )
        for item in items:
            if isinstance(item, dict):
                yield progress(item, history, thread)
            else:
                yield finish(item, history, thread, clear_box=False)

    with gr.Blocks(title="scenewright") as app:
        thread = gr.State(None)
        gr.Markdown(
            "## scenewright\nAsk for a scene, then follow up: *make it four*, *move the square to the left*, *now at night*."
        )
        with gr.Row():
            with gr.Column(scale=5):
                chat = gr.Chatbot(label="conversation", height=460, elem_id="conversation")
                box = gr.Textbox(label="request", placeholder=EXAMPLE, elem_id="request", lines=1)
                with gr.Row():
                    send_button = gr.Button("Send", variant="primary", elem_id="send")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown("", elem_id="status")
            with gr.Column(scale=4):
                image = gr.Image(label="image", type="pil", interactive=False, elem_id="image", height=300)
                overlay = gr.Image(
                    label="layout overlay", type="pil", interactive=False, elem_id="overlay", height=300
                )
                maps = gr.Gallery(label="attention maps", elem_id="maps", columns=2, height=200)
            with gr.Column(scale=4):
                plan = gr.Code(
                    language="json", interactive=True, label="plan (editable JSON)", elem_id="plan", lines=24
                )
                errors = gr.Markdown("", elem_id="plan-errors")
                render_button = gr.Button("Render this plan", elem_id="render")
        outputs = [chat, box, image, overlay, maps, plan, errors, status, thread]
        # One queue slot for everything that renders: a message sent during an edited plan's render
        # waits for it (the queue shows its place) instead of running beside it on the same model.
        for trigger, handler, inputs in (
            (send_button.click, send, [box, chat, thread]),
            (box.submit, send, [box, chat, thread]),
            (render_button.click, render, [plan, chat, thread]),
        ):
            trigger(handler, inputs, outputs, concurrency_limit=1, concurrency_id="render")

        def cancel(thread_id: str | None) -> str:
            if thread_id and agent.cancel(thread_id):
                return "cancelling: the render stops at its next step"
            return "nothing is rendering"

        # Not queued: it must run while this session's render holds the queue slot.
        cancel_button.click(cancel, [thread], [status], queue=False)
    app.queue(default_concurrency_limit=1, max_size=64)
    return app


def _plan_json(data: Any) -> str:
    from scenewright.agent.followup import plan_json  # the planner's modules load on first use

    return plan_json(data)
