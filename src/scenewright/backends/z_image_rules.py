"""What Z-Image refuses before torch: options its checkpoints have no use for, in one line.

Z-Image-Turbo is guidance-distilled (its pipeline runs at ``guidance_scale=0``: one conditional
pass per step, no negative prompt), and no Z-Image has a pooled text vector for regional's
``pooled=box``. Checked from the spec alone, so a bad request costs no weights.
"""

from __future__ import annotations

from scenewright.backends.specs import BackendSpec
from scenewright.errors import InvalidInputError

FAMILY = "z-image"
POOLED_OPTIONS = ("pooled=box", "pooled=box_single")


def is_distilled(spec: BackendSpec) -> bool:
    """Turbo checkpoints (hub id or folder named so) are guidance-distilled; others take CFG."""
    return "turbo" in (spec.source or spec.name).lower()


def check_z_image_sampling(spec: BackendSpec, guidance: float | None, negative_prompt: str) -> None:
    """A guidance scale or a negative prompt given to a distilled checkpoint is refused."""
    if spec.family != FAMILY or not is_distilled(spec):
        return
    if guidance is not None and guidance != 0:
        raise InvalidInputError(
            "guidance",
            f"{guidance} cannot be used: '{spec.name}' is guidance-distilled and samples without guidance",
            "drop --guidance (or pass --guidance 0)",
        )
    if negative_prompt:
        raise InvalidInputError(
            "negative-prompt",
            f"cannot be used: '{spec.name}' is guidance-distilled and runs no unconditional pass",
            "drop --negative-prompt",
        )


def check_z_image_strategy(spec: BackendSpec, strategy: str) -> None:
    """Options that need a pooled text vector are refused: Z-Image has none."""
    if spec.family != FAMILY:
        return
    base, _, options = strategy.partition(":")
    for option in POOLED_OPTIONS:
        if any(part.strip() == option for part in options.split(":")):
            raise InvalidInputError(
                f"{base.partition('+')[0]}.pooled",
                f"{option} needs a pooled text vector, which Z-Image has not",
                "use pooled=scene",
            )
