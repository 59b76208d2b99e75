"""What the embedded model cannot draw, said in one line before any weights load.

Sizes: the toy-world model learnt one image size (64 px). Within a factor of two it still draws
(smaller or larger shapes, worse counts), which earns a warning; further away it returns black or
noise after minutes, so the size is refused with the size to use: 32 to 128 px for the embedded
models, the same bound their backend spec holds (``backends.specs.tiny_sizes``).

Backgrounds: every toy scene lies on black, so a background clause other than a black or dark
one ("on a white background", "at night", "in a forest") cannot be drawn; the planner keeps it
in the plan, and this says so instead of dropping it in silence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from scenewright.errors import InvalidInputError

# A side further than this factor from the trained size is refused on the embedded model.
MAX_SIZE_FACTOR = 2.0
_FILLER = {"a", "an", "the", "on", "in", "at", "against", "with", "plain", "solid", "all", "pure"}


def trained_size(model_dir: str | Path | None) -> int | None:
    """The image size a toy-world model folder was trained on (None: not a toy-world folder)."""
    from scenewright.backends.specs import EMBEDDED_MODEL_DIR
    from scenewright.toyworld.model_config import CODEC_FILE

    codec = Path(model_dir or EMBEDDED_MODEL_DIR) / CODEC_FILE
    try:
        size = json.loads(codec.read_text()).get("image_size")
    except (OSError, ValueError):
        return None
    return int(size) if isinstance(size, int) else None


def check_trained_size(backend: str, trained: int, height: int | None, width: int | None) -> list[str]:
    """Refuse a side far from ``trained``; return one warning line for a side that merely differs."""
    warnings = []
    for name, value in (("height", height), ("width", width)):
        if value is None or value == trained:
            continue
        if not trained / MAX_SIZE_FACTOR <= value <= trained * MAX_SIZE_FACTOR:
            raise InvalidInputError(
                name,
                f"{value} px is more than {MAX_SIZE_FACTOR:g}x from the {trained} px backend '{backend}' "
                f"was trained on (it draws {trained / MAX_SIZE_FACTOR:g} to {trained * MAX_SIZE_FACTOR:g} px; "
                "further away, black or noise)",
                f"drop --{name} or use --{name} {trained}",
            )
        warnings.append(
            f"{name}: backend '{backend}' was trained on {trained} px; at {value} px expect shapes of "
            "the wrong size and worse counts"
        )
    return warnings


def drawable_backgrounds() -> list[str]:
    """The backgrounds the toy world draws: what an empty scene was called in training."""
    from scenewright.toyworld.captions import EMPTY_CAPTIONS

    return list(EMPTY_CAPTIONS)


def _core(text: str) -> str:
    return " ".join(w for w in re.findall(r"[a-z]+", text.lower()) if w not in _FILLER)


def background_note(background: str | None, backend: str) -> str | None:
    """One line when the plan's background is one the toy world cannot draw (None: it can)."""
    if not background or not background.strip():
        return None
    drawable = {_core(b) for b in drawable_backgrounds()}
    clauses = [c for c in (part.strip() for part in background.split(",")) if c]
    missing = [c for c in clauses if _core(c) not in drawable]
    if not missing:
        return None
    return (
        f"background: backend '{backend}' cannot draw {', '.join(repr(c) for c in missing)}; it draws "
        "shapes on black only (see `scenewright vocab`)"
    )
