"""``scenewright generate PROMPT --grid seed=1,2,3 --grid strategy=vanilla,stitch``: an X/Y grid.

One render per cell on one loaded model, each cell in a folder of its own (its image, plan,
overlay, with the cell's settings in the metadata, so ``rerender`` repeats any cell), and
``grid.png``: the cells labelled with their axis values. The first ``--grid`` is the columns, a
second the rows. Axes and values are checked here, without torch, before any weights load.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenewright.errors import InvalidInputError

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult

GRID_IMAGE = "grid.png"
# A grid of more is unreadable, and one mistyped range costs hours (as --seeds).
MAX_CELLS = 64
MAX_AXES = 2
_FIX = "use --grid NAME=V1,V2,... with NAME one of guidance, steps, seed, strategy, e.g. --grid seed=1,2,3"


def _steps(text: str) -> int:
    from scenewright.executor.limits import check_steps

    if not (text.isascii() and text.isdigit()):
        raise InvalidInputError(
            "grid", f"steps value {text!r} is not a whole number", "e.g. --grid steps=10,20,40"
        )
    check_steps(int(text))
    return int(text)


def _guidance(text: str) -> float:
    from scenewright.executor.limits import check_guidance

    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(
            "grid", f"guidance value {text!r} is not a number", "e.g. --grid guidance=2,4,6"
        ) from None
    check_guidance(value)
    return value


def _seed(text: str) -> int:
    from scenewright.executor.limits import resolve_seed

    if text != "-1" and not (text.isascii() and text.isdigit()):
        raise InvalidInputError(
            "grid", f"seed value {text!r} is not a whole number", "e.g. --grid seed=1,2,3 (-1: a random one)"
        )
    return resolve_seed(int(text))


def _strategy(text: str) -> str:
    from scenewright.executor.catalogue import check_strategy

    check_strategy(text)
    return text


# Each axis: how a value is read, and the setting it varies.
AXES: dict[str, Callable[[str], Any]] = {
    "guidance": _guidance,
    "steps": _steps,
    "seed": _seed,
    "strategy": _strategy,
}


EXAMPLES = {
    "guidance": "e.g. --grid guidance=2,4,6",
    "steps": "e.g. --grid steps=10,20,40",
    "seed": "e.g. --grid seed=1,2,3 (-1: a random one)",
    "strategy": "e.g. --grid strategy=vanilla,stitch (scenewright generate --help lists them)",
}


@dataclass(frozen=True)
class Axis:
    """One axis of the grid: the setting it varies and its values, in the order given."""

    name: str
    values: tuple[Any, ...]

    def label(self, value: Any) -> str:
        return f"{self.name}={value:g}" if isinstance(value, float) else f"{self.name}={value}"


def parse_axis(text: str) -> Axis:
    """``NAME=V1,V2,...`` as an :class:`Axis`, each value checked as its option would be."""
    name, equals, values = text.partition("=")
    name = name.strip().lower()
    if not equals or name not in AXES:
        shown = name or text
        raise InvalidInputError("grid", f"{shown[:40]!r} is not an axis", _FIX)
    items = [item.strip() for item in values.split(",")]
    if not any(items) or not all(items):
        raise InvalidInputError("grid", f"axis {name} has an empty value in {values[:60]!r}", _FIX)
    read = AXES[name]
    parsed: list[Any] = []
    for item in items:
        try:
            parsed.append(read(item))
        except InvalidInputError as error:
            if error.field == "grid":
                raise
            raise InvalidInputError(
                "grid", f"{name} value {item[:40]!r}: {error.problem}", EXAMPLES[name]
            ) from None
    return Axis(name, tuple(dict.fromkeys(parsed)))


def parse_grid(texts: list[str]) -> list[Axis]:
    """The one or two axes of ``--grid`` (columns, then rows), refused in one line when an axis
    is named twice, there are more than two, or the grid has more than ``MAX_CELLS`` cells."""
    if len(texts) > MAX_AXES:
        raise InvalidInputError(
            "grid", f"{len(texts)} axes given", "give at most two --grid options (columns, rows)"
        )
    axes = [parse_axis(text) for text in texts]
    if len(axes) == 2 and axes[0].name == axes[1].name:
        raise InvalidInputError(
            "grid", f"axis {axes[0].name} is given twice", "put all its values in one --grid"
        )
    cells = 1
    for axis in axes:
        cells *= len(axis.values)
    if cells > MAX_CELLS:
        raise InvalidInputError("grid", f"{cells} cells", f"render at most {MAX_CELLS} at once")
    return axes


def check_grid_options(args: argparse.Namespace) -> list[Axis]:
    """``--grid`` parsed, and refused beside the options it replaces (several seeds)."""
    texts = getattr(args, "grid", None) or []
    if not texts:
        return []
    if getattr(args, "seeds", None) is not None or getattr(args, "n_images", None) is not None:
        raise InvalidInputError(
            "grid", "is given with --seeds or --n-images", "vary the seed with --grid seed=1,2,3"
        )
    return parse_grid(texts)


@dataclass(frozen=True)
class Cell:
    """One cell: its column and row, and the settings it sets."""

    column: int
    row: int
    settings: dict[str, Any]

    def folder_name(self) -> str:
        """A file-system-safe folder named by the cell's values (``seed-2_strategy-stitch``)."""
        parts = [
            f"{name}-{value:g}" if isinstance(value, float) else f"{name}-{value}"
            for name, value in self.settings.items()
        ]
        return re.sub(r"[^A-Za-z0-9.=+-]", "_", "_".join(parts))

    def describe(self) -> str:
        return ", ".join(
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in self.settings.items()
        )


def grid_cells(axes: list[Axis]) -> Iterator[Cell]:
    """The cells row by row (the second axis outer, the first inner)."""
    columns = axes[0]
    rows = axes[1] if len(axes) > 1 else None
    for row, y in enumerate(rows.values if rows else [None]):
        for column, x in enumerate(columns.values):
            settings = {columns.name: x}
            if rows is not None:
                settings[rows.name] = y
            yield Cell(column, row, settings)


def grid_outputs(folder: Path, axes: list[Axis], names: tuple[str, ...]) -> list[Path]:
    """Every file a grid writes (for the up-front ``--overwrite`` check)."""
    return [folder / cell.folder_name() / name for cell in grid_cells(axes) for name in names] + [
        folder / GRID_IMAGE
    ]


def render_cell(agent: Agent, prompt: str, cell: Cell, base_seed: int, on_event: Any) -> AgentResult:
    """One cell's render: the agent's settings with the cell's, in a thread of its own (a new
    request, never a follow-up of the previous cell)."""
    saved = dict(agent.settings)
    for name in ("steps", "guidance"):
        if name in cell.settings:
            agent.settings[name] = cell.settings[name]
    try:
        return agent.run(
            prompt,
            seed=cell.settings.get("seed", base_seed),
            strategy=cell.settings.get("strategy"),
            thread_id=f"cell-{cell.row}-{cell.column}",
            on_event=on_event,
        )
    finally:
        agent.settings.clear()
        agent.settings.update(saved)


def print_cell(index: int, total: int, cell: Cell, said: str, image: str) -> None:
    """The plain progress line of a finished cell (also what a pipe gets)."""
    print(f"cell {index}/{total} ({cell.describe()}): {said}")
    print(f"  {'image:':<10} {image}")
    sys.stdout.flush()
