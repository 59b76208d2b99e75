"""The web studio's view of a thread's history: the gallery of its turns, a turn reopened in the
main view, and the files a turn wrote, read back as pictures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult


def picture(paths: dict[str, str], kind: str) -> Any:
    """The turn's ``kind`` file (overlay, attention sheet) as a picture, or None."""
    from PIL import Image

    path = paths.get(kind)
    if not path or not Path(path).is_file():
        return None
    with Image.open(path) as opened:
        return opened.convert("RGB")


def shown_turns(agent: Agent, thread: str) -> list[tuple[int, dict[str, Any]]]:
    """The thread's rendered turns whose image is still on disk, numbered from 1, oldest first."""
    return [
        (number, turn)
        for number, turn in enumerate(agent.history(thread), start=1)
        if (image := (turn.get("paths") or {}).get("image")) and Path(image).is_file()
    ]


def gallery(agent: Agent, thread: str) -> list[tuple[str, str]]:
    """Every rendered turn of the thread, oldest first, captioned with what made it."""
    return [
        (
            turn["paths"]["image"],
            f"{number}. {turn.get('request') or 'edited plan'} ({_made_by(turn)}, seed {turn.get('seed')})",
        )
        for number, turn in shown_turns(agent, thread)
    ]


def _made_by(turn: dict[str, Any]) -> str:
    from scenewright.agent.core import rendered_with

    return rendered_with(
        str(turn.get("strategy", "")), str(turn.get("refined_from") or ""), turn.get("refine") or []
    )


def turn_result(turn: dict[str, Any], thread: str) -> AgentResult:
    """A turn of the history as a result the main view can show (its image read from disk)."""
    from PIL import Image

    from scenewright.agent.core import AgentResult
    from scenewright.planner.plan import Plan

    paths = dict(turn.get("paths") or {})
    with Image.open(paths["image"]) as opened:
        picture = opened.convert("RGB")
    return AgentResult(
        status="done",
        thread_id=thread,
        image=picture,
        plan=Plan.model_validate(turn["plan"]) if turn.get("plan") else None,
        report=list(turn.get("report") or []),
        paths=paths,
        strategy=str(turn.get("strategy", "")),
        seed=int(turn.get("seed", 0)),
        verified=turn.get("verified"),
        refine=list(turn.get("refine") or []),
        refined_from=str(turn.get("refined_from") or ""),
    )


def studio_backends(current: str) -> list[str]:
    """What the backend control offers: the server's backend, the embedded models, and the hub
    models already in the local cache (looked up on disk, never over the network)."""
    from scenewright.backends.specs import ALIASES

    names = [current]
    for name, spec in ALIASES.items():
        if spec.name != name or name in names:
            continue  # an alias of one listed already ("flux" is "flux-dev")
        if spec.source is None or Path(spec.source).is_dir() or _cached(spec.source):
            names.append(name)
    return names


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)
