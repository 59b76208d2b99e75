"""One progress line per case on stderr, so a long benchmark shows where it is without a bar
that garbles logs or the table on stdout."""

from __future__ import annotations

import os
import sys
from typing import TextIO


class Progress:
    """Counts steps of a known total and prints ``[i/total] label`` for each (nothing when quiet)."""

    def __init__(self, total: int, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.total = total
        self.quiet = quiet
        self.stream = stream
        self.done = 0

    def step(self, label: str) -> None:
        """Count one step and say which it was."""
        self.done += 1
        if not self.quiet:
            print(f"[{self.done}/{self.total}] {label}", file=self.stream or sys.stderr, flush=True)


def silence_library_bars() -> None:
    """No library progress bar (transformers' "Loading weights", hub downloads, diffusers'), for
    ``--quiet``: stderr then carries errors only."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when those libraries are imported
    for module in ("transformers.utils.logging", "diffusers.utils.logging"):
        loaded = sys.modules.get(module)
        if loaded is not None:  # already imported: switch it off there too
            loaded.disable_progress_bar()
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None:
        hub.disable_progress_bars()
