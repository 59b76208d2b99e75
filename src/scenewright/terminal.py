"""Text bound for a terminal, with control characters shown instead of obeyed.

A prompt, an LLM's object name or a file name can carry escape sequences (``ESC ] 0 ; title``,
``ESC [ 2 J``) that would retitle or clear the user's terminal if printed raw.
"""

from __future__ import annotations

import os
import sys
import unicodedata

_KEPT = {"\n", "\t"}


def printable(text: str) -> str:
    """``text`` with every control character except newline and tab written as an escape."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch in _KEPT or unicodedata.category(ch) not in ("Cc", "Cf") else ascii(ch)[1:-1] for ch in text
    )


def silence_library_bars() -> None:
    """No library progress bar (transformers' "Loading weights", hub downloads, diffusers'), for
    ``--quiet``: stderr then carries results and errors only. One place for every command."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when those libraries are imported
    for module in ("transformers.utils.logging", "diffusers.utils.logging"):
        loaded = sys.modules.get(module)
        if loaded is not None:  # already imported (a test, a long-lived process): switch it off too
            loaded.disable_progress_bar()
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None:
        hub.disable_progress_bars()
