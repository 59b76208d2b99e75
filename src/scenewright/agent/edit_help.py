"""What the agent answers when a message is an edit it cannot make, or an edit with nothing to edit.

"make it bigger", "remove the square" or "/undo" sent as the first message of a conversation have
no scene to change; planned as a scene, they render objects named "make", "bigger" or "undo".
:func:`first_turn_edit` recognises such messages so that the agent answers with what works
instead (the same help an :class:`~scenewright.errors.UnsupportedEditError` carries later on).
"""

from __future__ import annotations

import re

from scenewright.agent.followup import edit_examples
from scenewright.errors import UnsupportedEditError
from scenewright.planner.plan import Plan

# The scene every example in the help starts from (the README's first example).
EXAMPLE_SCENE = "three red circles left of a blue square, a green triangle on the right"
_POLITE = r"(?:(?:ok(?:ay)?|please|so|and|but|wait|hey|hi)[,!]?\s+)*(?:(?:can|could|would|will) you\s+(?:please\s+)?)?"
_FOLLOW_ON = r"(?:now|then|instead|also|again|actually)[,!]?\s+"
# Verbs that only ever change a scene: whatever follows, there must be a scene already.
_EDIT_ONLY = frozenset(
    {"move", "shift", "push", "remove", "delete", "drop", "enlarge", "shrink", "grow", "resize",
     "swap", "replace", "rotate", "flip", "mirror", "undo", "redo", "zoom", "scale", "bigger",
     "smaller", "larger", "tinier", "more", "less", "fewer", "increase", "decrease", "double",
     "halve", "again", "redraw", "rerender", "recolor", "recolour", "lose", "fix", "revert"}
)  # fmt: skip
# Verbs that change a scene when they name a thing already there ("make it", "turn the square").
_EDIT_WHEN_REFERRING = frozenset(
    {"make", "turn", "set", "change", "put", "place", "color", "colour", "paint", "add", "include"}
)
_REFERRING = frozenset(
    {"it", "them", "this", "that", "those", "these", "the", "everything", "all", "each", "every",
     "its", "their", "both"}
)  # fmt: skip
_SIZE_ONLY = re.compile(r"(?:a (?:bit|lot|little) |much |way )?(?:bigger|larger|smaller|tinier)\b.*")
_TOO = re.compile(r"\b(?:is|are) (?:much |a bit |way )?too (?:big|small|large|tiny|little|close|far)\b")


def first_turn_edit(text: str) -> UnsupportedEditError | None:
    """The answer to ``text`` as a first message when it reads as a change to a scene (there is
    none yet); None when it reads as a scene to draw."""
    raw = " ".join(text.lower().split()).rstrip(".!?")
    if not raw:
        return None
    if raw.startswith("/"):
        return _refusal(text, "it is a chat command, not a scene")
    polite = re.match(_POLITE, raw)
    rest = raw[polite.end() if polite else 0 :]
    follow_on = re.match(_FOLLOW_ON, rest)
    words = re.findall(r"[a-z']+", rest)
    if not words:
        return _refusal(text, "there is no scene in it")
    why = "it reads as a change to a picture, and there is no picture yet"
    if follow_on or _SIZE_ONLY.fullmatch(rest) or _TOO.search(rest):
        return _refusal(text, why)
    first, second = words[0], words[1] if len(words) > 1 else ""
    if first in _EDIT_ONLY or (first in _EDIT_WHEN_REFERRING and (second in _REFERRING or not second)):
        return _refusal(text, why)
    if first in ("add", "include", "plus") and len(words) > 1:
        scene = rest.split(" ", 1)[1]
        return _refusal(text, why, f'to start with it, describe the scene: "{scene}"')
    return None


def _refusal(text: str, why: str, first_step: str = "") -> UnsupportedEditError:
    said = " ".join(text.split())[:80]
    examples = ", ".join(f'"{e}"' for e in help_examples(None)[:4])
    start = first_step or f'describe a scene first, e.g. "{EXAMPLE_SCENE}"'
    return UnsupportedEditError(f"'{said}': {why}", f"{start}; then follow up with {examples}")


def help_examples(plan: Plan | None) -> list[str]:
    """Follow-ups that work on ``plan`` (or on the example scene when there is none yet)."""
    if plan is None or not plan.objects:
        from scenewright.planner.rules import plan_with_rules

        plan = plan_with_rules(EXAMPLE_SCENE).plan
    return edit_examples(plan)


def follow_up_help(plan: Plan | None) -> str:
    """The lines of ``/help`` (and of the web's help) that list the follow-ups that work."""
    scene = "this scene" if plan is not None and plan.objects else f'"{EXAMPLE_SCENE}"'
    lines = [f"follow-ups that work on {scene}:"]
    lines.extend(f"  {example}" for example in help_examples(plan))
    return "\n".join(lines)
