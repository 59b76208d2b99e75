"""The ranges and choices of strategy options, declared beside each strategy and checked when a
name such as ``stitch:fill=0.8`` is parsed, so a bad value is refused before any work rather than
failing mid-render (and falling back to vanilla)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scenewright.errors import InvalidInputError


@dataclass(frozen=True)
class Range:
    """A closed numeric interval."""

    low: float
    high: float

    def check(self, strategy: str, key: str, value: object) -> None:
        number = float(value)  # type: ignore[arg-type]
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise InvalidInputError(
                "strategy",
                f"option {key} of '{strategy}' is {value}, outside [{self.low:g}, {self.high:g}]",
                f"use {key}={self.low:g} to {self.high:g}",
            )


@dataclass(frozen=True)
class Choice:
    """One of a few words."""

    values: tuple[str, ...]

    def check(self, strategy: str, key: str, value: object) -> None:
        if value not in self.values:
            raise InvalidInputError(
                "strategy",
                f"option {key} of '{strategy}' is {value!r}",
                f"use one of {', '.join(self.values)}",
            )


Bound = Range | Choice


def require_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming ``field`` and the valid words: the
    check for a function called directly, where ``Choice`` checks a parsed strategy name."""
    if value not in choices:
        raise InvalidInputError(field, f"unknown value {value!r}", f"use one of {', '.join(choices)}")
