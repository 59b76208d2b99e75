"""The web studio's page side: its style and the browser code that names the tab's thread.

The thread id lives in the page's address (``?thread=...``), so a reload comes back to the same
conversation; the page makes it itself on its first event, before the server answers anything.
The style shows every picture whole, scaled to its panel, with the panels' labels and toolbars
beside their content rather than over it.
"""

from __future__ import annotations

import re

THREAD_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The page's own thread: the one its address names (a reload), else a new one written into the
# address at once, so that every event of the page (a control changed before the first request,
# two requests sent at once) names the same thread without waiting for the server.
PAGE_THREAD = """(() => {
  const url = new URL(window.location.href);
  let thread = url.searchParams.get('thread');
  if (!thread) {
    thread = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
    url.searchParams.set('thread', thread);
    window.history.replaceState(null, '', url);
  }
  return thread;
})()"""
# After an event names the tab's thread, the address says it too, so a reload comes back to it.
KEEP_THREAD_IN_URL = """(thread) => {
  if (thread) {
    const url = new URL(window.location.href);
    if (url.searchParams.get('thread') !== thread) {
      url.searchParams.set('thread', thread);
      window.history.replaceState(null, '', url);
    }
  }
}"""


def with_page_thread(count: int, position: int) -> str:
    """Browser code for an event with ``count`` inputs: the thread input (at ``position``) falls
    back to the page's own (``PAGE_THREAD``), so a reloaded page continues its thread."""
    names = [f"a{i}" for i in range(count)]
    names_out = [f"({n} || {PAGE_THREAD})" if i == position else n for i, n in enumerate(names)]
    return f"({', '.join(names)}) => [{', '.join(names_out)}]"


def url_thread(value: str | None) -> str | None:
    """A thread id from the page (address or state), or None when it is not one we make."""
    return value if isinstance(value, str) and THREAD_PATTERN.fullmatch(value) else None


# Every picture whole: scaled to its panel (never cropped), toolbars beside the content rather
# than over it, the plan's JSON wrapped.
CSS = """
#image img, #overlay img, #maps img {object-fit: contain !important; width: 100%; height: auto;
  max-height: none;}
#image .image-container, #overlay .image-container, #maps .image-container {height: auto;}
#image, #overlay, #maps, #conversation {padding-top: 36px !important; position: relative;}
#image .image-container, #overlay .image-container, #maps .image-container,
  #conversation .wrapper {position: static !important;}
#image .top-panel, #overlay .top-panel, #maps .top-panel, #conversation .top-panel {
  position: absolute !important; top: 2px !important; right: 2px !important;}
#conversation {overflow: hidden !important;}
/* the chat's Clear would empty the page only (the server keeps the conversation) */
#conversation .top-panel {display: none !important;}
"""
