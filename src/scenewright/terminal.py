"""What the commands print to a terminal, and what they hold back when it is not one.

Text: a prompt, an LLM's object name or a file name can carry escape sequences (``ESC ] 0 ;
title``, ``ESC [ 2 J``) that would retitle or clear the user's terminal if printed raw.

Progress: a bar redraws itself with carriage returns, which a terminal overwrites and a pipe or
log file keeps, hundreds of fragments a render; bars are for terminals only.

Time: "done in" is the whole command as the user waited for it, imports and model loading
included, so it is measured from the process's start.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata

_KEPT = {"\n", "\t"}
# The fallback start where the OS does not say when the process started: this module's import,
# which the CLI does first.
_IMPORTED = time.monotonic()


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


def is_terminal(stream: object = None) -> bool:
    """Whether ``stream`` (default stderr, where bars go) is a terminal rather than a pipe or file."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def show_progress(quiet: bool, stream: object = None) -> bool:
    """Whether to draw progress bars: not ``--quiet``, and only on a terminal. When not, library
    bars (weights loading, downloads) are switched off as well, so piped output holds results only."""
    if quiet or not is_terminal(stream):
        silence_library_bars()
        return False
    return True


def _process_start_age() -> float | None:
    """Seconds since this process started, from Linux's /proc (None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            # Field 22 (starttime, clock ticks after boot) follows the command name in parentheses.
            started = int(handle.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def process_seconds() -> float:
    """Seconds this command has run, from the process's start (imports and loading included)."""
    age = _process_start_age()
    return age if age is not None else time.monotonic() - _IMPORTED
