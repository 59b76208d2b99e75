"""One progress line per case on stderr, so a long benchmark shows where it is without a bar
that garbles logs or the table on stdout."""

from __future__ import annotations

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
