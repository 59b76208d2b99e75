"""Reference fixtures from the methods' authors' code, one module per method (see
scripts/reference_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def checkout_commit(checkout: Path) -> str:
    """The checkout's commit: its git HEAD, else (an exported tree) the commit it was exported from,
    given as REFERENCE_COMMIT."""
    if (checkout / ".git").exists():
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return os.environ.get("REFERENCE_COMMIT", "unknown (set REFERENCE_COMMIT for an exported tree)")
