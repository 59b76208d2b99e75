"""Where and when an edit is active: block selection, step windows and strength schedules.

Every edit carries a :class:`Sites` so that strategies can choose blocks and steps the way the
papers do (e.g. regions in the first 5 to 10 of 25 steps, concept maps from late double blocks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A block is named by its kind ("double", "single" or "joint") and its index within that kind.
Site = tuple[str, int]
Schedule = Callable[[int, int], float]


@dataclass(frozen=True)
class Sites:
    """Which blocks and steps an edit acts on; ``None`` means all of them.

    ``double``/``single``/``joint`` are block indices per kind (FLUX double and single blocks are
    chosen separately, as Regional-Prompting-FLUX does); ``steps`` is a half-open step window.
    """

    double: frozenset[int] | None = None
    single: frozenset[int] | None = None
    joint: frozenset[int] | None = None
    steps: tuple[int, int] | None = None

    @classmethod
    def make(
        cls,
        *,
        double: Iterable[int] | None = None,
        single: Iterable[int] | None = None,
        joint: Iterable[int] | None = None,
        steps: tuple[int, int] | None = None,
    ) -> Sites:
        """Build from any iterables (lists, ranges)."""

        def freeze(values: Iterable[int] | None) -> frozenset[int] | None:
            return None if values is None else frozenset(values)

        return cls(freeze(double), freeze(single), freeze(joint), steps)

    def has_block(self, site: Site) -> bool:
        kind, index = site
        chosen = {"double": self.double, "single": self.single, "joint": self.joint}.get(kind)
        return chosen is None or index in chosen

    def has_step(self, step: int) -> bool:
        return self.steps is None or self.steps[0] <= step < self.steps[1]

    def active(self, site: Site, step: int) -> bool:
        return self.has_step(step) and self.has_block(site)


def constant(value: float) -> Schedule:
    """The same strength at every step."""
    return lambda _step, _num_steps: value


def numina_delta(step: int, num_steps: int, cutoff: float = 0.26) -> float:
    """NUMINA's delta(t) = 0.25 * (4 - 3 tanh(t - 25)) on a 50-step clock, zero once <= ``cutoff``.

    Our step is mapped onto their 50-step clock so the fade keeps its shape at any step count. The
    curve only approaches 0.25 (tanh < 1), so "while > 0.25" needs a margin: 0.26 keeps the first
    28 of 50 steps, as reported.
    """
    t = step * 50.0 / max(num_steps, 1)
    value = 0.25 * (4.0 - 3.0 * math.tanh(t - 25.0))
    return value if value > cutoff else 0.0


def taca_gamma(gamma: float = 1.2, early_fraction: float = 0.1, early_steps: int | None = None) -> Schedule:
    """TACA's temperature: ``gamma`` on the early steps, then 1.

    ``early_steps`` is a fixed count of first steps (TACA's public code: 3, at any step count);
    without it, the first ``early_fraction`` of the steps (at least one: 3 of 30 at 0.1).
    """

    def schedule(step: int, num_steps: int) -> float:
        early = early_steps if early_steps is not None else max(1, round(early_fraction * num_steps))
        return gamma if step < early else 1.0

    return schedule
