"""The sampling settings every face refuses before torch loads: steps, guidance and seed.

Kept apart from ``sampler`` (which imports torch) so that a bad ``--seed`` is answered in well under a
second; the sampler checks its settings with these same functions.
"""

from __future__ import annotations

import math

from scenewright.errors import InvalidInputError

__all__ = ["MAX_SEED", "MAX_STEPS", "check_guidance", "check_seed", "check_steps"]

# Flow-matching samplers converge in tens of steps; thousands only burn time (and 100,000 hangs).
MAX_STEPS = 1000
MAX_SEED = 2**63


def check_steps(steps: int) -> None:
    """A step count the sampler can run in reasonable time."""
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidInputError("steps", f"{steps} is outside 1..{MAX_STEPS}", "use --steps 20 to 50")


def check_guidance(guidance: float) -> None:
    """A finite, non-negative guidance scale (NaN would reach the image and its metadata)."""
    if not math.isfinite(guidance) or guidance < 0:
        raise InvalidInputError(
            "guidance", f"{guidance} is not a finite number >= 0", "use --guidance 0 or more"
        )


def check_seed(seed: int) -> None:
    """A seed torch's generator takes."""
    if not 0 <= seed < MAX_SEED:
        raise InvalidInputError("seed", f"{seed} is out of range", "use a seed in [0, 2**63)")
