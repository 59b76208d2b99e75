"""Named presets: the strategy tuning a backend ships, read without torch.

A preset is a model folder's ``strategy_defaults.json`` (``src/scenewright/models/*/``): under
``"preset"`` its name (``tiny``, ``tiny16``, ``flux``), under each strategy's name the options
measured best on that backend (under a composed name such as ``regional+taca``, those that
differ beside TACA). The backend that ships a preset runs it unasked; ``stitch:preset=tiny16``
runs it on any backend, and ``stitch:mode=paper`` runs none. A backend without one (SD3) runs
every strategy's own defaults, which are its authors'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from scenewright.backends.tuning import FILE_NAME, MODELS_DIR, NAME_KEY
from scenewright.errors import InvalidInputError

Tuning = Mapping[str, Mapping[str, Any]]


@lru_cache(maxsize=1)
def _shipped() -> dict[str, tuple[str, Tuning]]:
    """Preset name -> (its model folder's name, its tuning), in the order of their folders."""
    found: dict[str, tuple[str, Tuning]] = {}
    for path in sorted(MODELS_DIR.glob(f"*/{FILE_NAME}")):
        tuning = json.loads(path.read_text())
        name = tuning.get(NAME_KEY)
        if isinstance(name, str):
            found[name] = (path.parent.name, {key: value for key, value in tuning.items() if key != NAME_KEY})
    return found


def presets() -> dict[str, Tuning]:
    """Every shipped preset by name, in the order of their folders."""
    return {name: tuning for name, (_, tuning) in _shipped().items()}


def folders() -> dict[str, str]:
    """Model folder name -> the preset it ships."""
    return {folder: name for name, (folder, _) in _shipped().items()}


def check(strategy: str, name: str) -> None:
    """Refuse, in one line, a preset that no backend ships."""
    if name not in presets():
        raise InvalidInputError(
            "strategy", f"'{strategy}' names no shipped preset {name!r}", f"use one of {', '.join(presets())}"
        )


def tuning(name: str) -> Tuning:
    """The preset ``name``: strategy (or composed name) -> its options."""
    check(NAME_KEY, name)
    return presets()[name]


def strategy_preset(tuning: Tuning, strategy: str) -> dict[str, Any]:
    """The options ``tuning`` sets for ``strategy`` ("regional+taca": regional's, then the
    composition's own on top), as written in the file."""
    composed = strategy.partition(":")[0]
    base = composed.partition("+")[0]
    options = {**tuning.get(base, {})}
    if composed != base:
        options.update(tuning.get(composed, {}))
    return options
