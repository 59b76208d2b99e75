"""What the chat faces (terminal and web) say after a turn.

A turn answered with help (status ``"help"``: an edit the follow-up parser cannot make, or an edit
sent before there is a scene) is shown as a short answer and the follow-ups that work on the
current scene, not as an error line; every other turn is the result's own summary.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from scenewright.agent.edit_help import follow_up_help

if TYPE_CHECKING:
    from scenewright.agent.core import AgentResult


def reply(result: AgentResult) -> str:
    """The text for one turn's answer."""
    if result.status != "help":
        return result.summary() or result.status
    said = (result.errors or ["that is not something I can change"])[0].removeprefix("follow-up: ")
    head = re.split(r"; (?:then follow up with|try) ", said, maxsplit=1)[0]
    lines = [head, follow_up_help(result.plan), "or type a whole new scene; /help lists the commands"]
    if result.paths.get("image"):
        lines.append(f"kept the last image: {result.paths['image']}")
    return "\n".join(lines)
