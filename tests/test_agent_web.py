"""``scenewright serve`` end to end in headless Chromium: type a request, see the image (and its
thumbnail in the conversation), edit the plan JSON, see it re-render; a broken edit shows its
errors and keeps the image. The studio: a request sent mid-render waits its turn, commands typed
in the box work, the gallery holds every turn, Undo, the side-by-side of two strategies and the
box editor. The studio shows everything: no panel crops its picture, its JSON or its label, and no
toolbar sits over what it belongs to. A reload brings the conversation back; a gallery turn opens
in the main view; size, negative prompt and refine rounds reach the render. Screenshots go to
``test-artifacts/``. Skips cleanly where Chromium, Playwright or Gradio is missing."""

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
PANELS = ["#image", "#overlay", "#maps", "#plan", "#conversation"]
# What a panel hides of its own content, as the browser lays it out: a picture cropped or squeezed
# (its shown box against its natural size and every clipping box around it), text cut at an edge
# (an element's scroll size against its client size: the plan's JSON must wrap), and a label or
# toolbar drawn over the picture, JSON or chat bubble of its panel. The conversation's own
# vertical scrolling is how it shows a long talk, not a crop.
CLIPPED_JS = """(panels) => {
  const problems = [];
  const rect = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const cut = (a, b) => [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])];
  const meets = (a, b) => a[0] < b[2] - 1 && b[0] < a[2] - 1 && a[1] < b[3] - 1 && b[1] < a[3] - 1;
  const clips = (e) => { const s = getComputedStyle(e); return s.overflowX !== 'visible' || s.overflowY !== 'visible'; };
  const shown = (e, upTo) => {
    let r = rect(e);
    for (let p = e.parentElement; p && p !== upTo.parentElement; p = p.parentElement) if (clips(p)) r = cut(r, rect(p));
    return r;
  };
  for (const selector of panels) {
    const panel = document.querySelector(selector);
    if (!panel) { problems.push(`${selector}: missing`); continue; }
    const scroller = selector === '#conversation' ? panel.querySelector('[role=log]') : null;
    for (const img of panel.querySelectorAll('img')) {
      const [l, t, r, b] = rect(img), [sl, st, sr, sb] = shown(img, scroller || panel);
      if (!scroller && (sl > l + 1 || st > t + 1 || sr < r - 1 || sb < b - 1))
        problems.push(`${selector}: picture cut to ${[sl, st, sr, sb].map(Math.round)} of ${[l, t, r, b].map(Math.round)}`);
      const fit = getComputedStyle(img).objectFit, w = r - l, h = b - t;
      const aspect = img.naturalWidth / img.naturalHeight;
      if (!['contain', 'scale-down'].includes(fit) && Math.abs(w / h - aspect) > 0.02)
        problems.push(`${selector}: picture ${img.naturalWidth}x${img.naturalHeight} shown ${fit} in ${Math.round(w)}x${Math.round(h)}`);
    }
    for (const e of panel.querySelectorAll('*')) {
      const s = getComputedStyle(e);
      if (s.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1)
        problems.push(`${selector}: ${e.className} cut at the right (${e.scrollWidth} > ${e.clientWidth})`);
      if (!scroller && e !== panel && s.overflowY !== 'visible' && e.closest('.cm-editor') === null
          && e.scrollHeight > e.clientHeight + 1)
        problems.push(`${selector}: ${e.className} cut at the bottom (${e.scrollHeight} > ${e.clientHeight})`);
    }
    const content = [...panel.querySelectorAll('img, .message, .cm-content')]
      .filter((e) => !e.closest('.icon-button-wrapper'));
    for (const bar of panel.querySelectorAll('.top-panel, label[data-testid=block-label]')) {
      if (bar.offsetParent === null) continue;
      for (const c of content)
        if (meets(rect(bar), shown(c, scroller || panel))) problems.push(`${selector}: ${bar.className} over ${c.tagName}`);
      if (bar.scrollWidth > bar.clientWidth + 1) problems.push(`${selector}: label cut (${bar.textContent})`);
    }
  }
  return problems;
}"""


SERVED: dict[str, str] = {}  # where the module's server writes


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
    SERVED["out"] = str(out)
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


def _clipped(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(CLIPPED_JS, PANELS)
    return problems


def test_web_chat_renders_edits_and_rerenders(server: str) -> None:
    from playwright.sync_api import expect

    with _browser_page(server) as page:
        page.locator("#request textarea").fill(
            "three red circles left of a blue square, a green triangle on the right"
        )
        page.locator("#send").click()
        image = page.locator("#image img")
        expect(image).to_be_visible()
        expect(page.locator("#overlay img")).to_be_visible()
        expect(page.locator("#maps img")).to_be_visible()
        expect(page.locator("#conversation")).to_contain_text("rendered with vanilla")
        expect(page.locator("#conversation img")).to_have_count(1)  # a thumbnail, not a path
        assert "image: /" not in page.locator("#conversation").inner_text()
        expect(page.locator("#plan .cm-content")).to_contain_text('"circle"')
        page.wait_for_function(  # every picture loaded: its natural size is known
            "() => [...document.querySelectorAll('#image img, #overlay img, #maps img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)"
        )
        assert _clipped(page) == []
        # The whole attention strip: the image and one map per object plus the background.
        maps = page.locator("#maps img")
        natural = maps.evaluate("(i) => [i.naturalWidth, i.naturalHeight]")
        frame = maps.bounding_box()
        assert frame is not None and frame["width"] / frame["height"] == pytest.approx(
            natural[0] / natural[1], rel=0.02
        )
        first_src = image.get_attribute("src")
        page.screenshot(path=str(ARTIFACTS / "web-chat.png"), full_page=True)

        plan = json.loads(_editor_text(page))
        assert [o["name"] for o in plan["objects"]] == ["circle", "square", "triangle"]
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

        # A reload comes back to the same conversation: the address names its thread.
        assert "?thread=" in page.url
        page.reload()
        conversation = page.locator("#conversation")
        expect(conversation).to_contain_text("(rendered the edited plan)")
        expect(conversation).to_contain_text("three red circles left of a blue square")
        expect(conversation.locator("img")).to_have_count(2)
        expect(page.locator("#plan .cm-content")).to_contain_text('"yellow"')
        expect(page.locator("#turns img")).to_have_count(2)
        expect(page.locator("#image img")).to_be_visible()


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

        # A gallery turn opens in the main view: the first turn's plan (and its image: vanilla
        # draws the same pixels for both, which only the plan tells apart) come back.
        turns.locator("img").first.click()
        expect(page.locator("#status")).to_contain_text("turn 1 of 2 shown")
        expect(page.locator("#image img")).to_be_visible()
        assert json.loads(_editor_text(page))["objects"][1]["boxes"][0] == before


def test_web_controls_reach_the_render(server: str) -> None:
    """Size, negative prompt and refine rounds as the page sets them; the refine default shown."""
    from playwright.sync_api import expect

    from scenewright.tools.output import read_png_metadata

    with _browser_page(server) as page:
        refine = page.locator("#refine-rounds input")
        expect(page.locator("#refine-rounds")).to_contain_text("refine rounds (default 0)")
        expect(refine).to_have_value("0")
        for selector, value in (("#width input", "96"), ("#refine-rounds input", "1")):
            page.locator(selector).fill(value)
            page.locator(selector).press("Tab")
        page.locator("#negative textarea").fill("blurry")
        page.locator("#negative textarea").press("Tab")
        _send(page, "a red circle")
        conversation = page.locator("#conversation")
        expect(conversation).to_contain_text("rendered with vanilla, refine 1 round")
        picture = page.locator("#image img")
        page.wait_for_function("() => document.querySelector('#image img')?.naturalWidth > 0")
        width, height = picture.evaluate("(i) => [i.naturalWidth, i.naturalHeight]")
        assert width / height == pytest.approx(96 / 64)
        thread = page.url.split("thread=")[1]
        assert _clipped(page) == []
        page.set_viewport_size({"width": 800, "height": 900})  # one column: the panels full width
        page.wait_for_timeout(300)
        assert _clipped(page) == []
        page.screenshot(path=str(ARTIFACTS / "web-controls.png"), full_page=True)
    images = sorted(Path(SERVED["out"]).glob(f"{thread}/turn-*/image.png"))
    settings = read_png_metadata(images[-1])["settings"]
    assert (settings["width"], settings["height"], settings["negative_prompt"]) == (96, 64, "blurry")
