"""The sampling bounds every face applies before any weights load: ``generate``'s options and the
recipe ``rerender`` reads from someone's PNG are held to the same rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenewright.errors import InvalidInputError
from scenewright.planner.plan import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from scenewright.backends.specs import BackendSpec

# A negative prompt steers away from a few things; the text encoders read 77 to 512 tokens of it,
# so anything past the request's own limit is cut off unseen (and once was written back, 1 MB).
MAX_NEGATIVE_CHARS = MAX_PROMPT_CHARS
# Each refine pass is a full render; past a handful the image stops improving (and -3 once meant 0).
MAX_REFINE_ROUNDS = 8


def check_refine_rounds(rounds: int) -> int:
    """``--refine-rounds`` as given, or one line when it is negative or past the bound."""
    if not 0 <= rounds <= MAX_REFINE_ROUNDS:
        raise InvalidInputError(
            "refine-rounds",
            f"{rounds} is outside 0..{MAX_REFINE_ROUNDS}",
            "use 0 (never) to 3; each pass is another full render",
        )
    return rounds


def check_sampling(
    spec: BackendSpec,
    steps: int | None,
    height: int | None,
    width: int | None,
    guidance: float | None,
    negative_prompt: str = "",
) -> None:
    """Refuse, in one line, a setting the backend ``spec`` cannot render (None: its default).

    A height of 0 is a height, not "the default": it is refused like any other size the model
    cannot take.
    """
    from scenewright.backends.specs import GUIDANCE_DISTILLED_FAMILIES, check_size
    from scenewright.backends.z_image_rules import check_z_image_sampling
    from scenewright.executor.limits import check_guidance, check_steps

    if steps is not None:
        check_steps(steps)
    if guidance is not None:
        check_guidance(guidance)
    if height is not None or width is not None:
        check_size(
            spec.name,
            spec.size_multiple,
            spec.min_size,
            height if height is not None else spec.min_size,
            width if width is not None else spec.min_size,
            spec.max_size,
        )
    check_z_image_sampling(spec, guidance, negative_prompt)
    if negative_prompt.strip() and spec.family in GUIDANCE_DISTILLED_FAMILIES:
        raise InvalidInputError(
            "negative-prompt",
            f"backend '{spec.name}' is guidance-distilled and runs no unconditional pass, so it would be ignored",
            "drop --negative-prompt, or use a CFG backend (sd3.5-large, qwen-image, chroma)",
        )
    from scenewright.backends.flux2_specs import check_negative_prompt

    check_negative_prompt(spec, negative_prompt)
    if len(negative_prompt) > MAX_NEGATIVE_CHARS:
        raise InvalidInputError(
            "negative-prompt",
            f"is {len(negative_prompt):,} characters long",
            f"shorten it to at most {MAX_NEGATIVE_CHARS:,}",
        )
