"""Text for the web studio's markdown components, shown as the characters it holds.

Gradio's chatbot and markdown components render markdown and HTML. Object names, requests and
errors come from users, loaded plans and LLM answers, so an object named ``<img src=x>`` or
``**x**`` must read as those characters, never become markup: HTML's specials become entities and
markdown's punctuation is backslash-escaped (CommonMark shows an escaped character as itself).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def as_text(text: str) -> str:
    """``text`` escaped so that a markdown component shows it literally."""
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", text), quote=False)


def shown(conversation: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the chatbot gets it: every text message escaped, pictures as they are."""
    return [
        {**message, "content": as_text(message["content"])}
        if isinstance(message.get("content"), str)
        else message
        for message in conversation
    ]
