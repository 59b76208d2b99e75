from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests never touch the network: hub look-ups fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config: pytest.Config) -> None:
    # The browser test of the web chat; it skips itself without chromium or playwright.
    config.addinivalue_line("markers", "browser: drives the web chat in headless Chromium")
