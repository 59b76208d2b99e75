"""The agent's state: what a checkpoint holds for one conversation thread.

Everything here is JSON-serialisable (plans as dicts, images as file paths) so that the SQLite
checkpointer can store a thread and a new process can pick it up where the last one stopped.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Turn(TypedDict, total=False):
    """One finished render, kept in the thread's history for ``/undo`` and for the web gallery."""

    request: str
    plan: dict[str, Any]
    seed: int
    strategy: str
    paths: dict[str, str]
    report: list[dict[str, Any]]
    verified: bool | None  # the verdict the turn was given (``/undo`` shows it again)
    refine: list[dict[str, Any]]  # the turn's refine passes, as ``refine_explanation``
    refined_from: str  # what drew the image the first refine pass corrected


class AgentState(TypedDict, total=False):
    """Per-thread state. Fields marked "turn" are reset by every new input; the rest persist."""

    # turn inputs
    request: str  # the user's words this turn ("" when a plan is given directly)
    edited_plan: dict[str, Any] | None  # a plan given by the user instead of words
    review: bool  # pause after planning so the user can edit the plan
    strategy: str  # "auto" or a strategy name
    settings: dict[str, Any]  # steps, height, width, guidance (None: the backend's defaults)
    # turn results
    candidate: dict[str, Any] | None  # the plan as proposed, before validation
    plan_source: str  # "rules", "llm:<model>", "edit", "user"
    reference: dict[str, Any] | None  # the plan a user's edit started from (to keep prompts in step)
    status: str  # "rendered" (mid-turn), then "done", "invalid", "failed", "cancelled" or "help"
    notes: list[str]  # what the user should be told (fallbacks, repairs, edits)
    errors: list[str]  # validation errors by field, or why nothing was rendered
    strategy_used: str  # what actually ran
    route_reason: str
    report: list[dict[str, Any]]  # per object: wanted, found, in boxes, ok
    strategy_report: dict[str, Any]  # the JSON part of what the strategy reported
    verified: bool | None  # None when no verifier could judge
    paths: dict[str, str]  # files written this turn (image, plan, overlay, attention)
    refine_round: int
    refine_base: str  # the strategy the refine strategy re-runs and corrects
    refined_from: str  # what drew the image refine's first pass corrects ("auto:stitch")
    # What refine did, pass by pass: {"pass", "summary", "rounds": [{"round", "kept", "failing",
    # "explanation"}]}; each round says what it changed or why the previous image was kept.
    refine_explanation: list[dict[str, Any]]
    # persistent
    plan: dict[str, Any] | None  # the last plan that validated
    seed: int
    turn: int
    image_path: str | None  # the last good image; kept when a turn fails
    history: list[Turn]


def fresh_turn(request: str = "", edited_plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values that start a turn: per-turn fields cleared, persistent ones untouched."""
    return {
        "request": request,
        "edited_plan": edited_plan,
        "candidate": None,
        "plan_source": "",
        "reference": None,
        "status": "",
        "notes": [],
        "errors": [],
        "strategy_used": "",
        "route_reason": "",
        "report": [],
        "strategy_report": {},
        "verified": None,
        "paths": {},
        "refine_round": 0,
        "refine_base": "",
        "refined_from": "",
        "refine_explanation": [],
    }
