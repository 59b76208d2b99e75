"""``scenewright serve`` end to end in headless Chromium: type a request, see the image (and its
thumbnail in the conversation), edit the plan JSON, see it re-render; a broken edit shows its
errors and keeps the image. The studio: a request sent mid-render waits its turn, commands typed
in the box work, the gallery holds every turn, Undo, the side-by-side of two strategies and the
box editor. Screenshots go to ``test-artifacts/``. Skips cleanly where Chromium, Playwright or
Gradio is missing."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("gradio")
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed")
    pytest.importorskip("gradio_image_annotation")
    from scenewright import Agent
    from scenewright.agent.web import build_app, launch_in_background

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared two-core machine: one thread is ten times faster here
    out = tmp_path_factory.mktemp("web")
    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=out)
    app = build_app(agent)
    port = _free_port()
    url = launch_in_background(app, out, port)
    try:
        yield url + "/"
    finally:
        app.close()
        agent.close()
        torch.set_num_threads(threads)


def _editor_text(page: Any) -> str:
    text: str = page.locator("#plan .cm-content").inner_text()
    return text


@contextmanager
def _browser_page(server: str) -> Iterator[Any]:
    """A headless Chromium page on the app, with the tests' timeouts; closed afterwards."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server)
            yield page
        finally:
            browser.close()


def _replace_editor(page: Any, text: str) -> None:
    editor = page.locator("#plan .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)  # no key events: the editor's auto-closing brackets stay out


def test_web_chat_renders_edits_and_rerenders(server: str) -> None:
    from playwright.sync_api import expect

    with _browser_page(server) as page:
        page.locator("#request textarea").fill("two red circles left of a blue square")
        page.locator("#send").click()
        image = page.locator("#image img")
        expect(image).to_be_visible()
        expect(page.locator("#overlay img")).to_be_visible()
        expect(page.locator("#conversation")).to_contain_text("rendered with vanilla")
        expect(page.locator("#conversation img")).to_have_count(1)  # a thumbnail, not a path
        assert "image: /" not in page.locator("#conversation").inner_text()
        expect(page.locator("#plan .cm-content")).to_contain_text('"circle"')
        first_src = image.get_attribute("src")
        page.screenshot(path=str(ARTIFACTS / "web-chat.png"), full_page=True)

        plan = json.loads(_editor_text(page))
        assert [o["name"] for o in plan["objects"]] == ["circle", "square"]
        plan["objects"][1]["attributes"] = ["yellow"]
        _replace_editor(page, json.dumps(plan, indent=2))
        page.locator("#render").click()
        expect(page.locator("#conversation")).to_contain_text("(rendered the edited plan)")
        expect(image).not_to_have_attribute("src", first_src or "")
        expect(page.locator("#plan .cm-content")).to_contain_text('"yellow"')
        expect(page.locator("#status")).to_contain_text("done")
        page.screenshot(path=str(ARTIFACTS / "web-chat-edited.png"), full_page=True)

        second_src = image.get_attribute("src")
        plan["objects"][0]["count"] = 0
        _replace_editor(page, json.dumps(plan, indent=2))
        page.locator("#render").click()
        expect(page.locator("#plan-errors")).to_contain_text("objects[0].count")
        expect(image).to_have_attribute("src", second_src or "")  # the last good image stays
        page.screenshot(path=str(ARTIFACTS / "web-chat-invalid-plan.png"), full_page=True)


def _send(page: Any, text: str) -> None:
    """Type and send ``text``, and wait until the conversation shows it (taken, maybe waiting)."""
    from playwright.sync_api import expect

    page.locator("#request textarea").fill(text)
    page.locator("#request textarea").press("Enter")
    expect(page.locator("#conversation")).to_contain_text(text)


def test_web_studio_queues_routes_commands_undoes_compares_and_edits_boxes(server: str) -> None:
    from playwright.sync_api import expect

    with _browser_page(server) as page:
        conversation, turns = page.locator("#conversation"), page.locator("#turns")

        # Three messages in a row: the second and third wait for the first, none is dropped.
        _send(page, "two red circles left of a blue square")
        _send(page, "make it three circles")
        _send(page, "/seed 5")
        expect(conversation).to_contain_text("seed 5 from the next image on")
        expect(conversation).to_contain_text("edited the previous plan (circle: count 2 -> 3)")
        expect(conversation.locator("img")).to_have_count(2)
        expect(page.locator("#seed input")).to_have_value("5")
        expect(turns.locator("img")).to_have_count(2)  # the gallery: one picture per turn

        _send(page, "make it fancier")  # answered with help, not rendered
        expect(conversation).to_contain_text("'fancier' is not an edit I can make")
        expect(conversation).to_contain_text("follow-ups that work on this scene")
        expect(page.locator("#status")).to_contain_text("help")

        page.locator("#undo").click()
        expect(conversation).to_contain_text("undone: back to the previous image and plan")
        expect(turns.locator("img")).to_have_count(1)
        expect(page.locator("#plan .cm-content")).to_contain_text('"count": 2')

        page.get_by_role("tab", name="Compare strategies").click()
        page.locator("#compare").click()
        expect(page.locator("#compare-result")).to_contain_text("right: ")
        expect(page.locator("#compare-left-image img")).to_be_visible()
        expect(page.locator("#compare-right-image img")).to_be_visible()
        expect(page.locator("#compare-result")).to_contain_text("seed 0")
        expect(turns.locator("img")).to_have_count(1)  # the comparison is not a turn

        page.get_by_role("tab", name="Box editor").click()
        canvas = page.locator("#boxes canvas").first
        expect(canvas).to_be_visible()
        before = json.loads(_editor_text(page))["objects"][1]["boxes"][0]
        frame = canvas.bounding_box()
        assert frame is not None
        side = frame["height"]  # the square picture sits in the middle of the canvas
        left = frame["x"] + (frame["width"] - side) / 2
        grab = ((before[0] + before[2]) / 2 * side, (before[1] + before[3]) / 2 * side)
        page.mouse.move(left + grab[0], frame["y"] + grab[1])
        page.mouse.down()
        page.mouse.move(left + grab[0] - 0.1 * side, frame["y"] + grab[1] + 0.05 * side, steps=8)
        page.mouse.up()
        page.locator("#render-boxes").click()
        expect(conversation).to_contain_text("(rendered the dragged boxes)")
        expect(turns.locator("img")).to_have_count(2)
        after = json.loads(_editor_text(page))["objects"][1]["boxes"][0]
        assert after[0] == pytest.approx(before[0] - 0.1, abs=0.03)
        assert after[1] == pytest.approx(before[1] + 0.05, abs=0.03)
        page.screenshot(path=str(ARTIFACTS / "web-studio.png"), full_page=True)
