"""The strategy tuning a hub family's backend runs unasked, read without torch.

Each family that needs one ships it as ``src/scenewright/models/<family>/strategy_defaults.json``
(beside the embedded models' own), so that ``scenewright strategies`` lists it without loading a
model; ``executor.presets`` reads the same files by preset name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
FILE_NAME = "strategy_defaults.json"
NAME_KEY = "preset"


def family_tuning(family: str) -> Mapping[str, Mapping[str, Any]]:
    """The preset in ``models/<family>/``, without its name; empty when the family ships none (SD3)."""
    path = MODELS_DIR / family / FILE_NAME
    if not path.is_file():
        return {}
    return {key: value for key, value in json.loads(path.read_text()).items() if key != NAME_KEY}
