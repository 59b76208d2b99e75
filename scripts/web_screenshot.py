"""Regenerate docs/web-chat.png: the web studio after a real render on the embedded model.

Starts ``scenewright serve``'s app on the tiny backend with its own defaults (20 steps, strategy
auto, seed 1), sends the README's first example and a follow-up in headless Chromium, opens the
box editor and saves a full-page screenshot. Needs the ``web`` extra, Playwright and Chromium.

    .venv/bin/python scripts/web_screenshot.py [--out docs/web-chat.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
from pathlib import Path

REQUESTS = [
    "three red circles left of a blue square, a green triangle on the right",
    "make the square yellow",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/web-chat.png"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import expect, sync_playwright

    from scenewright import Agent
    from scenewright.agent.web import build_app, launch_in_background

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as out, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        agent = Agent(seed=args.seed, out_dir=out, max_refine_rounds=0)
        app = build_app(agent)
        launch_in_background(app, out, port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                expect.set_options(timeout=300_000)
                page.goto(f"http://127.0.0.1:{port}/")
                for number, request in enumerate(REQUESTS, start=1):
                    page.locator("#request textarea").fill(request)
                    page.locator("#request textarea").press("Enter")
                    expect(page.locator("#turns img")).to_have_count(number)
                page.get_by_role("tab", name="Box editor").click()
                expect(page.locator("#boxes canvas").first).to_be_visible()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            app.close()
            agent.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
