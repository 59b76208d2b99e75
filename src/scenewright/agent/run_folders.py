"""Where ``generate`` writes when no ``--out`` is given, and which seeds ``--seeds`` names.

A run without ``--out`` gets the next numbered folder (``out/0001``, ``out/0002``, ...): created
with ``mkdir`` that fails if the folder exists, so two runs at once never share one and nothing
is ever overwritten.
"""

from __future__ import annotations

import re
from pathlib import Path

from scenewright.errors import InvalidInputError

DEFAULT_ROOT = Path("out")
MAX_SEEDS = 64  # a contact sheet of more is unreadable, and one mistyped range costs hours
_NUMBERED = re.compile(r"^\d{4,}$")


def fresh_run_folder(root: Path = DEFAULT_ROOT) -> Path:
    """Create and return ``root/NNNN``, one past the highest numbered folder already there."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name) for p in root.iterdir() if _NUMBERED.match(p.name)]
    number = max(taken, default=0) + 1
    while True:
        folder = root / f"{number:04d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # another run took it a moment ago
            number += 1


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"0,3,5"`` or both (``"0-3,8"``) as a list of distinct seeds, in order."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise InvalidInputError(
                "seeds",
                f"{text!r} is not a seed list",
                'write a range or a list, e.g. --seeds 0-7 or "0,3,5"',
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise InvalidInputError("seeds", f"range {part} runs backwards", f"write {last}-{first}")
        if last - first + len(seeds) >= MAX_SEEDS:
            raise InvalidInputError(
                "seeds", f"{text!r} names more than {MAX_SEEDS} seeds", f"render at most {MAX_SEEDS} at once"
            )
        seeds.extend(s for s in range(first, last + 1) if s not in seeds)
    return seeds


def choose_seeds(seed: int, seeds: str | None, n_images: int | None) -> list[int]:
    """The seeds to render: ``--seeds``, else ``--n-images`` seeds from ``--seed`` on, else ``--seed``."""
    if n_images is not None and not 1 <= n_images <= MAX_SEEDS:
        raise InvalidInputError("n-images", f"{n_images} is out of range", f"use 1 to {MAX_SEEDS}")
    if seeds is not None:
        chosen = parse_seeds(seeds)
        if n_images is not None and n_images != len(chosen):
            raise InvalidInputError(
                "n-images",
                f"{n_images} differs from the {len(chosen)} seeds of --seeds {seeds}",
                "give one of --seeds and --n-images",
            )
        return chosen
    return [seed + k for k in range(n_images or 1)]
