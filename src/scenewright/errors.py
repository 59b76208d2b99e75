"""Typed errors that carry one line for the user: what is wrong and how to fix it.

The CLI prints ``str(error)`` and exits with code 2 for any :class:`ScenewrightError`, so every
message must stand on its own without a traceback.
"""

from __future__ import annotations


class ScenewrightError(Exception):
    """Base class for errors caused by input or environment, not by a bug."""


class InvalidInputError(ScenewrightError, ValueError):
    """A user-supplied value cannot be used; names the field and the fix."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}; {fix}")


class BackendError(ScenewrightError):
    """A backend cannot be found, resolved or loaded."""


class OutputExistsError(ScenewrightError, FileExistsError):
    """An output file already exists and overwriting was not allowed."""


class RenderCancelled(ScenewrightError):
    """The user cancelled a render (Ctrl-C, the web's cancel button, :meth:`Agent.cancel`)."""

    def __init__(self, message: str = "render cancelled; the last good image is kept") -> None:
        super().__init__(message)


class UnsupportedEditError(InvalidInputError):
    """A follow-up that reads as an edit of the scene but is none this tool can make: answered
    with what it can do, never rendered as a new scene."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__("follow-up", problem, fix)
