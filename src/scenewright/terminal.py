"""Text bound for a terminal, with control characters shown instead of obeyed.

A prompt, an LLM's object name or a file name can carry escape sequences (``ESC ] 0 ; title``,
``ESC [ 2 J``) that would retitle or clear the user's terminal if printed raw.
"""

from __future__ import annotations

import unicodedata

_KEPT = {"\n", "\t"}


def printable(text: str) -> str:
    """``text`` with every control character except newline and tab written as an escape."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch in _KEPT or unicodedata.category(ch) not in ("Cc", "Cf") else ascii(ch)[1:-1] for ch in text
    )
