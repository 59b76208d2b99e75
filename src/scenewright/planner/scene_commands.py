"""Words that begin a new scene ("start over", "new:", "reset", "clear", "from scratch").

A conversation edits its scene until the user says to begin again; these phrasings say so, and
what follows them (if anything) is the new scene's request. Neither they nor the request words
around a scene ("draw", "please") are objects: :data:`COMMAND_WORDS` is what no planned object
may be named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Leading phrases that start a new scene; the rest of the line (after "with", ":" ...) is its request.
_LEAD = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|please|now|so|right|let'?s|lets)[,!]?\s+)*"
    r"(?P<cmd>start (?:over|again|afresh|fresh|anew)|restart|begin (?:again|anew)|start a new (?:scene|picture|image)"
    r"|(?:a )?new (?:scene|picture|image)|new(?=\s*[:;,.!-]|\s*$)|reset(?: the scene| everything| it| all)?"
    r"|clear(?: the scene| everything| it| all)?(?=\s*[:;,.!-]|\s*$|\s+with\b|\s+and\b)|from scratch)"
    r"(?:\s*[:;,.!-]+)?\s*(?:(?:and|then)\s+)?(?:(?:with|from|draw|make|show)\s+)?(?P<rest>.*)$",
    re.IGNORECASE,
)
_TAIL = re.compile(
    r"^(?P<rest>.*?)[\s,;:.!-]*(?:,\s*)?(?:(?:starting |start(?:ing)? )?(?:from scratch|all over again|over again|anew)"
    r"|as a new scene|in a new scene)[\s.!]*$",
    re.IGNORECASE,
)

# Words of scene commands and of requests: never the name of a planned object.
COMMAND_WORDS = frozenset(
    {"start", "restart", "reset", "clear", "new", "scratch", "over", "again", "anew", "afresh", "begin",
     "please", "draw", "make", "create", "show", "paint", "render", "generate", "produce", "depict",
     "give", "want", "need", "see", "undo", "redo", "add", "remove", "delete", "swap", "move", "change"}
)  # fmt: skip


@dataclass(frozen=True)
class SceneCommand:
    """A line that begins a new scene; ``request`` is what to draw in it ("" for none yet)."""

    request: str


def scene_command(text: str) -> SceneCommand | None:
    """The new-scene command ``text`` gives, or None when it gives none."""
    line = " ".join(text.split())
    lead = _LEAD.match(line)
    if lead is not None:
        rest = lead["rest"].strip()
        tail = _TAIL.match(rest)
        return SceneCommand((tail["rest"] if tail else rest).strip(" ,;:.!-"))
    tail = _TAIL.match(line)
    if tail is not None:
        return SceneCommand(tail["rest"].strip(" ,;:.!-"))
    return None


def without_command(text: str) -> str:
    """``text`` without a new-scene command around it (the request alone)."""
    found = scene_command(text)
    return text if found is None else found.request
