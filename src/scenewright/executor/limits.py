"""The sampling settings every face refuses before torch loads: steps, guidance and seed.

Kept apart from ``sampler`` (which imports torch) so that a bad ``--seed`` is answered in well under a
second; the sampler checks its settings with these same functions.

A seed of ``-1`` asks for a random one, as in A1111 and ComfyUI: each face that takes a seed turns
it into a drawn seed where it accepts it (:func:`resolve_seed`), so everything after (the sampler,
the PNG's metadata, the printed line, ``rerender``) sees and records an ordinary seed.
"""

from __future__ import annotations

import math
import numbers
import secrets

from scenewright.errors import InvalidInputError

__all__ = [
    "MAX_SEED",
    "MAX_STEPS",
    "RANDOM_SEED",
    "check_guidance",
    "check_seed",
    "check_steps",
    "draw_seed",
    "resolve_seed",
    "seed_from_text",
]

# Flow-matching samplers converge in tens of steps; thousands only burn time (and 100,000 hangs).
MAX_STEPS = 1000
MAX_SEED = 2**63
# What asks for a random seed; a drawn one is below 2**32, short enough to read and retype.
RANDOM_SEED = -1
DRAWN_SEEDS = 2**32
SEED_FIX = "use a whole number in [0, 2**63), or -1 for a random one"


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
    """A seed torch's generator takes (a face that offers ``-1`` resolves it first, with
    :func:`resolve_seed`; one that does not, refuses it here)."""
    if not 0 <= seed < MAX_SEED:
        raise InvalidInputError("seed", f"{seed} is out of range", "use a seed in [0, 2**63)")


def draw_seed() -> int:
    """A random seed, from the OS's entropy (never from torch's or numpy's global generators, which
    a caller may have seeded)."""
    return secrets.randbelow(DRAWN_SEEDS)


def resolve_seed(seed: object, field: str = "seed") -> int:
    """The seed to render with: a drawn one for ``-1`` (or ``"-1"``), else ``seed`` held to the one
    rule of every face (:func:`scenewright.untrusted.parse_seed`)."""
    from scenewright.untrusted import parse_seed

    integral = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if (integral and seed == RANDOM_SEED) or (isinstance(seed, str) and seed.strip() == "-1"):
        return draw_seed()
    try:
        return parse_seed(seed, field)
    except InvalidInputError as error:
        raise InvalidInputError(field, error.problem, SEED_FIX) from None


def seed_from_text(text: str, field: str = "seed") -> int:
    """A seed typed in a command (``/seed 7``, ``/seed -1``), resolved; anything else is one line
    that says what to type."""
    stripped = text.strip()
    if stripped != "-1" and not (stripped.isascii() and stripped.isdigit()):
        shown = stripped[:40] or "nothing"
        raise InvalidInputError(
            field, f"{shown!r} is not a whole number", "type e.g. /seed 7, or /seed -1 for a random one"
        )
    return resolve_seed(stripped, field)
