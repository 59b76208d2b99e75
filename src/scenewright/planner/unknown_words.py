"""Object names the backend has no word for: one warning line each, before the render says "done".

A FLUX- or SD3-class text encoder reads any English word, so those backends say nothing here.
The embedded models tokenize over a closed vocabulary (``backend.unknown_words``): a name such as
``pe'ej`` reaches them as ``[UNK]`` and nothing is drawn for it, which the user must be told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenewright.planner.plan import Plan


def unknown_word_notes(plan: Plan, backend: Any) -> list[str]:
    """Warnings naming each object the backend cannot draw, then other prompt words it ignores."""
    unknown_of: Callable[[str], list[str]] | None = getattr(backend, "unknown_words", None)
    if unknown_of is None:  # an open-vocabulary text encoder: every word reaches the model
        return []
    name = getattr(backend, "name", "this")
    notes: list[str] = []
    named: set[str] = set()
    for index, obj in enumerate(plan.objects):
        missing = list(dict.fromkeys(unknown_of(obj.name)))
        if missing:
            named.update(missing)
            notes.append(
                f"objects[{index}] '{obj.name}' is not a word the {name} model knows, so it draws "
                "nothing for it; name a thing it knows (`scenewright vocab` lists them)"
            )
    rest = [w for w in dict.fromkeys(unknown_of(plan.global_prompt)) if w not in named]
    if rest:
        notes.append(f"the {name} model does not know the words {', '.join(rest)}; they are ignored")
    return notes
