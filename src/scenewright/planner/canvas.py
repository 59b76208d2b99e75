"""Sizes that use the canvas: a slicing tree of instance grids, scaled as large as it fits.

A layout is a tree. A :class:`Leaf` is one object's instances in a rows x cols grid of slots; a
:class:`Split` puts its children side by side ("row") or one above the other ("stack") with fixed
gaps between them. One slot side ``u`` serves every object (times its aspect and scale), so
:func:`fit_unit` finds the largest ``u`` at which the whole tree fits the canvas, and
:func:`place` gives every leaf its rectangle, handing leftover room to the gaps that may widen,
so the scene spreads over the canvas instead of sitting in one band.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# The smallest box side (a share of the canvas) the embedded toy-world model draws an object in.
# Measured with its exact evaluator (tools/evaluator.py) on stitch, the strategy ``auto`` picks
# for boxed plans, 8 seeds per side, 2026-05: three different single objects side by side, found
# in their boxes at side 0.12 (1 token): 1/24, 0.16: 14/24, 0.20: 18/24, 0.22: 23/24, 0.25: 23/24,
# 0.30: 22/24; four instances of one object in a 2x2 grid, count exact at 0.16: 3/8, 0.20: 6/8,
# 0.22: 8/8, 0.25: 7/8. So 0.22 (14 px, 1.8 of its 8 px tokens), the low end of what it was
# trained on (objects of 11-22 px). FLUX/SD3 token grids draw smaller, but not much usefully so.
MIN_BOX_SIDE = 0.22
MARGIN = 0.04  # free border around the canvas
GUTTER = 0.04  # free space between the cells of different objects
MAX_SLOT = 0.62  # a lone object's slot stops growing here (the canvas is not one object)


@dataclass
class Leaf:
    """One object's instances: a grid of ``rows`` x ``cols`` slots of ``slot_w`` x ``slot_h`` units."""

    item: int
    rows: int
    cols: int
    slot_w: float = 1.0
    slot_h: float = 1.0

    def size(self, unit: float) -> tuple[float, float]:
        return self.cols * self.slot_w * unit, self.rows * self.slot_h * unit


@dataclass
class Split:
    """Children side by side (``row``) or stacked (``stack``), ``gaps[k]`` apart after child k;
    ``grows[k]`` says whether leftover room may widen that gap (never for touching pairs or
    for "next to" partners, whose relation bounds the gap)."""

    kind: str  # "row" or "stack"
    children: list[Leaf | Split]
    gaps: list[float] = field(default_factory=list)
    grows: list[bool] = field(default_factory=list)
    # How leftover room is shared at the two ends, against one share per growing gap: (1, 0)
    # pushes the children to the far end ("a cat on the right"), (0.5, 0.5) centres them.
    ends: tuple[float, float] = (0.5, 0.5)

    def __post_init__(self) -> None:
        missing = len(self.children) - 1 - len(self.gaps)
        self.gaps = [*self.gaps, *[GUTTER] * missing]
        self.grows = [*self.grows, *[True] * (len(self.gaps) - len(self.grows))]

    def size(self, unit: float) -> tuple[float, float]:
        sizes = [child.size(unit) for child in self.children]
        if self.kind == "row":
            return sum(w for w, _ in sizes) + sum(self.gaps), max(h for _, h in sizes)
        return max(w for w, _ in sizes), sum(h for _, h in sizes) + sum(self.gaps)


Node = Leaf | Split
Rect = tuple[float, float, float, float]


def leaves(node: Node) -> Iterator[Leaf]:
    """Every leaf of the tree, left to right and top to bottom."""
    if isinstance(node, Leaf):
        yield node
    else:
        for child in node.children:
            yield from leaves(child)


Lines = list[tuple[float, float]]


def _pareto(lines: Lines) -> Lines:
    """The lines ``a * u + b`` not dominated by another (larger or equal in both ``a`` and ``b``)."""
    kept: Lines = []
    for a, b in sorted(set(lines), key=lambda line: (-line[0], -line[1])):
        if not any(b <= kb for _, kb in kept):
            kept.append((a, b))
    return kept


def _lines(node: Node) -> tuple[Lines, Lines]:
    """Width and height of ``node`` as the maximum of lines ``a * u + b`` in the slot unit ``u``."""
    if isinstance(node, Leaf):
        return [(node.cols * node.slot_w, 0.0)], [(node.rows * node.slot_h, 0.0)]
    parts = [_lines(child) for child in node.children]
    along, across = (0, 1) if node.kind == "row" else (1, 0)
    total: Lines = [(0.0, sum(node.gaps))]
    for part in parts:
        total = _pareto([(a + pa, b + pb) for a, b in total for pa, pb in part[along]])
    widest = _pareto([line for part in parts for line in part[across]])
    return (total, widest) if node.kind == "row" else (widest, total)


def fit_unit(root: Node, cap: float = MAX_SLOT, width: float = 1.0, height: float = 1.0) -> float:
    """The largest slot unit (at most ``cap``) at which ``root`` fits a ``width`` x ``height``
    share of the canvas inside the margins; 0 when its fixed gaps alone do not fit. Exact: every
    size is a maximum of lines in the unit."""
    unit = cap
    widths, heights = _lines(root)
    for lines, room in ((widths, width - 2 * MARGIN + 1e-9), (heights, height - 2 * MARGIN + 1e-9)):
        for a, b in lines:
            if b > room:
                return 0.0
            if a > 0:
                unit = min(unit, (room - b) / a)
    return max(0.0, unit)


def place(root: Node, unit: float) -> dict[int, Rect]:
    """Each leaf's rectangle for slot ``unit``: the tree centred in the margins, leftover room
    spread over the gaps that may grow and the two ends, each child of a row as tall as the row
    and of a stack as wide as the stack."""
    out: dict[int, Rect] = {}
    _place(root, unit, (MARGIN, MARGIN, 1 - MARGIN, 1 - MARGIN), out)
    return out


def _place(node: Node, unit: float, rect: Rect, out: dict[int, Rect]) -> None:
    if isinstance(node, Leaf):
        out[node.item] = rect
        return
    row = node.kind == "row"
    x0, y0, x1, y1 = rect
    lo, room = (x0, x1 - x0) if row else (y0, y1 - y0)
    sizes = [child.size(unit)[0 if row else 1] for child in node.children]
    extra = max(0.0, room - sum(sizes) - sum(node.gaps))
    # Leftover room goes to the gaps that may grow and to the ends (half a share each unless an
    # anchor says otherwise), so a lone column sits in the middle and three spread evenly.
    shares = sum(node.grows) + sum(node.ends)
    share = extra / shares if shares > 0 else 0.0
    pos = lo + (share * node.ends[0] if shares > 0 else extra / 2)
    for index, (child, size) in enumerate(zip(node.children, sizes, strict=True)):
        child_rect = (pos, y0, pos + size, y1) if row else (x0, pos, x1, pos + size)
        _place(child, unit, child_rect, out)
        pos += size
        if index < len(node.gaps):
            pos += node.gaps[index] + (share if node.grows[index] else 0.0)
