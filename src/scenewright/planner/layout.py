"""Deterministic layout engine: boxes for every instance that honour the plan's relations.

The canvas is cut into columns (left to right, ordered by the horizontal relations) and each
column into levels (top to bottom, ordered by the vertical ones). Objects tied by "above",
"below", "on" or "under" share a column; each cell of a level packs its object's instances in a
small grid with size and aspect priors. Different objects get disjoint cells, so their boxes
never overlap; "on"/"under" pairs share a cell edge so that they touch. Relations that contradict
earlier ones are dropped with a warning, and every kept relation is checked on the final boxes
(``geometry``), so a returned layout always satisfies what it claims. Same inputs and seed give
the same boxes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from scenewright.planner.geometry import Box, between_holds, group_holds
from scenewright.planner.lexicon import ASPECT_PRIORS, SIZE_PRIORS

MARGIN = 0.04  # free border around the canvas
GUTTER = 0.04  # free space between cells of different objects
FILL = 0.88  # share of its grid slot an instance's box takes before the size prior
JITTER = 0.35  # share of a slot's free space a box may move by, from the seed

_VERTICAL = frozenset({"above", "below", "on", "under"})
_HORIZONTAL = frozenset({"left of", "right of", "next to", "between"})
_TIGHT = frozenset({"on", "under"})

RelationTriple = tuple[int, str, int]


@dataclass(frozen=True)
class LayoutItem:
    """What the engine needs to know of one object: its noun, count and canvas anchor."""

    name: str
    count: int
    anchor: str | None = None  # "left", "right", "top", "bottom", "center", "top left"... or None

    @property
    def horizontal(self) -> str | None:
        """The left/right part of the anchor."""
        return next((w for w in (self.anchor or "").split() if w in ("left", "right")), None)

    @property
    def vertical(self) -> str | None:
        """The top/bottom part of the anchor."""
        return next((w for w in (self.anchor or "").split() if w in ("top", "bottom")), None)


@dataclass
class LayoutResult:
    """Boxes per object (one per instance), the relations kept, and what had to give way."""

    boxes: list[list[Box]]
    kept: list[int]
    warnings: list[str] = field(default_factory=list)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _edges(
    n: int, relations: Sequence[RelationTriple]
) -> tuple[_UnionFind, list[tuple[int, int]], list[tuple[int, int, bool]]]:
    """Columns (union-find), horizontal edges (left -> right) and vertical ones (top -> bottom)."""
    uf = _UnionFind(n)
    for s, rel, o in relations:
        if rel in _VERTICAL:
            uf.union(s, o)
    horizontal: list[tuple[int, int]] = []
    vertical: list[tuple[int, int, bool]] = []
    between: dict[int, list[int]] = {}
    for s, rel, o in relations:
        if rel in ("left of", "next to"):
            horizontal.append((s, o))
        elif rel == "right of":
            horizontal.append((o, s))
        elif rel == "between":
            between.setdefault(s, []).append(o)
        elif rel in ("above", "on"):
            vertical.append((s, o, rel == "on"))
        elif rel in ("below", "under"):
            vertical.append((o, s, rel == "under"))
    for s, partners in between.items():
        if len(partners) >= 2:
            horizontal.extend([(partners[0], s), (s, partners[1])])
    return uf, horizontal, vertical


def _topological(
    nodes: Sequence[int], edges: Sequence[tuple[int, int]], prefer: dict[int, int] | None = None
) -> list[int] | None:
    """Kahn's order, earliest-mentioned first (and a preferred successor right after); None on a cycle."""
    indegree = {v: 0 for v in nodes}
    succ: dict[int, list[int]] = {v: [] for v in nodes}
    for a, b in edges:
        if a == b:
            return None
        succ[a].append(b)
        indegree[b] += 1
    ready = sorted(v for v in nodes if indegree[v] == 0)
    order: list[int] = []
    while ready:
        pick = ready[0]
        if order and prefer and prefer.get(order[-1]) in ready:
            pick = prefer[order[-1]]
        ready.remove(pick)
        order.append(pick)
        for b in succ[pick]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
        ready.sort()
    return order if len(order) == len(nodes) else None


def _consistent(n: int, relations: Sequence[RelationTriple]) -> bool:
    """Whether the relations can all hold at once in the column/level scheme."""
    uf, horizontal, vertical = _edges(n, relations)
    roots = sorted({uf.find(i) for i in range(n)})
    col_edges = [(uf.find(a), uf.find(b)) for a, b in horizontal]
    if any(a == b for a, b in col_edges):
        return False
    if _topological(roots, col_edges) is None:
        return False
    return _topological(list(range(n)), [(a, b) for a, b, _ in vertical]) is not None


def _grid(count: int, single_row: bool) -> tuple[int, int]:
    """Rows and columns of the instance grid for ``count`` instances."""
    if single_row or count <= 3:
        return 1, count
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def _aspect(name: str) -> float:
    return ASPECT_PRIORS.get(name, ASPECT_PRIORS.get(name.split()[-1], 1.0))


def _size(name: str) -> float:
    return SIZE_PRIORS.get(name, SIZE_PRIORS.get(name.split()[-1], 0.85))


def _spread(
    lo: float, hi: float, weights: Sequence[float], gutter: Sequence[float]
) -> list[tuple[float, float]]:
    """Cut [lo, hi] into spans proportional to ``weights`` with the given gaps between them."""
    free = hi - lo - sum(gutter)
    total = sum(weights)
    spans, pos = [], lo
    for index, w in enumerate(weights):
        size = free * w / total
        spans.append((pos, pos + size))
        pos += size + (gutter[index] if index < len(gutter) else 0.0)
    return spans


def layout(items: Sequence[LayoutItem], relations: Sequence[RelationTriple], seed: int = 0) -> LayoutResult:
    """Place one box per instance of every item so that the relations hold; see the module doc."""
    n = len(items)
    warnings: list[str] = []
    kept: list[int] = []
    accepted: list[RelationTriple] = []
    for index, (s, rel, o) in enumerate(relations):
        if not (0 <= s < n and 0 <= o < n) or s == o:
            warnings.append(f"relation {index} ({rel}) does not name two different objects; dropped")
            continue
        if _consistent(n, [*accepted, (s, rel, o)]):
            accepted.append((s, rel, o))
            kept.append(index)
        else:
            warnings.append(
                f"'{items[s].name} {rel} {items[o].name}' contradicts the relations before it; dropped"
            )
    # Canvas anchors become extra left/right constraints where they fit.
    placed = list(accepted)
    for i, item in enumerate(items):
        if item.horizontal is None:
            continue
        for j, other in enumerate(items):
            if j == i or other.horizontal == item.horizontal:
                continue
            extra = (i, "left of", j) if item.horizontal == "left" else (j, "left of", i)
            if _consistent(n, [*placed, extra]):
                placed.append(extra)

    for i, item in enumerate(items):  # "a cat at the top and a dog at the bottom": one above the other
        if item.vertical != "top":
            continue
        for j, other in enumerate(items):
            extra = (i, "above", j)
            if other.vertical == "bottom" and _consistent(n, [*placed, extra]):
                placed.append(extra)

    uf, horizontal, vertical = _edges(n, placed)
    roots = sorted({uf.find(i) for i in range(n)})
    col_edges = sorted({(uf.find(a), uf.find(b)) for a, b in horizontal})
    prefer = {uf.find(s): uf.find(o) for s, rel, o in accepted if rel == "next to"}
    prefer.update(
        {uf.find(o): uf.find(s) for s, rel, o in accepted if rel == "next to" and uf.find(o) not in prefer}
    )
    column_order = _topological(roots, col_edges, prefer) or roots

    # Levels inside a column: height above the bottom by longest path over vertical edges.
    below: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b, _tight in vertical:
        below[a].append(b)
    height: dict[int, int] = {}
    vertical_order = _topological(list(range(n)), [(a, b) for a, b, _ in vertical]) or list(range(n))
    for i in reversed(vertical_order):
        height[i] = max((height[b] + 1 for b in below[i]), default=0)
    tight_objects: dict[int, list[int]] = {}
    for s, rel, o in accepted:
        if rel in _TIGHT:
            tight_objects.setdefault(s, []).append(o)
    on_subjects = {s for s, rel, _ in accepted if rel == "on"}
    under_subjects = {s for s, rel, _ in accepted if rel == "under"}
    on_objects = {o for _, rel, o in accepted if rel == "on"}
    under_objects = {o for _, rel, o in accepted if rel == "under"}
    halign: dict[int, str] = {}
    for s, rel, o in accepted:
        if rel == "next to":
            halign.setdefault(s, "right")
            halign.setdefault(o, "left")

    grids = {i: _grid(items[i].count, i in on_subjects or i in under_subjects) for i in range(n)}
    columns: list[list[list[int]]] = []  # column -> levels (top first) -> items
    for root in column_order:
        members = [i for i in range(n) if uf.find(i) == root]
        levels = sorted({height[i] for i in members}, reverse=True)
        columns.append([[i for i in members if height[i] == lv] for lv in levels])

    def level_weight(level: list[int]) -> float:
        return float(max(grids[i][0] for i in level))

    def column_weight(col: list[list[int]]) -> float:
        return max(sum(grids[i][1] * _aspect(items[i].name) for i in level) for level in col) / max(
            1.0, 0.6 * sum(level_weight(level) for level in col)
        )

    col_spans = _spread(
        MARGIN, 1 - MARGIN, [column_weight(c) for c in columns], [GUTTER] * (len(columns) - 1)
    )
    cells: dict[int, tuple[float, float, float, float]] = {}
    valign: dict[int, str] = {}
    for (x0, x1), col in zip(col_spans, columns, strict=True):
        if len(col) == 1 and len(col[0]) >= 1:
            ys = [(MARGIN, 1 - MARGIN)]
            anchors = {items[i].vertical for i in col[0]}
            if anchors == {"top"}:
                ys = [(MARGIN, 0.55)]
            elif anchors == {"bottom"}:
                ys = [(0.45, 1 - MARGIN)]
        else:
            gaps = []
            for upper, lower in itertools.pairwise(col):
                touching = any(b in lower for a in upper for b in tight_objects.get(a, [])) or any(
                    a in upper for b in lower for a in tight_objects.get(b, [])
                )
                gaps.append(0.0 if touching else GUTTER)
            ys = _spread(MARGIN, 1 - MARGIN, [level_weight(lv) for lv in col], gaps)
        for (y0, y1), level in zip(ys, col, strict=True):
            spans = _spread(
                x0, x1, [grids[i][1] * _aspect(items[i].name) for i in level], [GUTTER] * (len(level) - 1)
            )
            for (cx0, cx1), i in zip(spans, level, strict=True):
                cells[i] = (cx0, y0, cx1, y1)
                needs_bottom = i in on_subjects or i in under_objects
                needs_top = i in under_subjects or i in on_objects
                if needs_bottom and needs_top:
                    valign[i] = "fill"  # in a stack: touch the level above and the one below
                elif needs_bottom:
                    valign[i] = "bottom"
                elif needs_top:
                    valign[i] = "top"
                elif i in halign:
                    valign[i] = "middle"  # side by side: same height, no vertical jitter

    # A canvas anchor keeps a wide cell to its side of the canvas ("a cat on the right").
    for i, item in enumerate(items):
        x0, y0, x1, y1 = cells[i]
        if item.horizontal is not None and x1 - x0 > 0.5:
            keep = 0.55 * (x1 - x0)
            cells[i] = (x0, y0, x0 + keep, y1) if item.horizontal == "left" else (x1 - keep, y0, x1, y1)

    # Side by side: an object alone in its column takes the height band of its partner's level.
    level_count = {i: len(col) for col in columns for level in col for i in level}
    for s, rel, o in accepted:
        if rel != "next to":
            continue
        lone, partner = (o, s) if level_count[o] == 1 else (s, o) if level_count[s] == 1 else (None, None)
        if lone is not None and partner is not None and level_count[partner] > 1:
            x0, _, x1, _ = cells[lone]
            cells[lone] = (x0, cells[partner][1], x1, cells[partner][3])

    rng = random.Random(seed)
    boxes: dict[int, list[Box]] = {}
    pending = list(range(n))
    while pending:
        progressed = False
        for i in list(pending):
            deps = tight_objects.get(i, [])
            if any(d in pending for d in deps):
                continue
            cell = cells[i]
            if deps:  # sit within the horizontal extent of what it rests on (or hangs under)
                lo = max(min(b[0] for d in deps for b in boxes[d]), cell[0])
                hi = min(max(b[2] for d in deps for b in boxes[d]), cell[2])
                if hi - lo > 0.02:
                    cell = (lo, cell[1], hi, cell[3])
            boxes[i] = _pack(items[i], cell, grids[i], valign.get(i, "center"), halign.get(i, "center"), rng)
            pending.remove(i)
            progressed = True
        if not progressed:  # cannot happen with acyclic tight edges; keep the loop finite anyway
            for i in pending:
                boxes[i] = _pack(items[i], cells[i], grids[i], "center", "center", rng)
            pending = []

    result = [boxes[i] for i in range(n)]
    final_kept: list[int] = []
    partners: dict[int, list[int]] = {}
    for index in kept:
        s, rel, o = relations[index]
        if rel == "between":
            partners.setdefault(s, []).append(o)
        if rel == "between" or group_holds(rel, result[s], result[o]):
            final_kept.append(index)
        else:
            warnings.append(f"could not place '{items[s].name} {rel} {items[o].name}'; dropped")
    for s, others in partners.items():
        if len(others) < 2 or not between_holds(result[s], result[others[0]], result[others[1]]):
            dropped = [k for k in final_kept if relations[k][0] == s and relations[k][1] == "between"]
            final_kept = [k for k in final_kept if k not in dropped]
            warnings.append(f"could not place '{items[s].name}' between two objects; dropped")
    return LayoutResult(result, final_kept, warnings)


def _pack(
    item: LayoutItem,
    cell: tuple[float, float, float, float],
    grid: tuple[int, int],
    valign: str,
    halign: str,
    rng: random.Random,
) -> list[Box]:
    """Boxes for the instances of one object inside its cell, in a rows x cols grid."""
    x0, y0, x1, y1 = cell
    rows, cols = grid
    slot_w, slot_h = (x1 - x0) / cols, (y1 - y0) / rows
    aspect, size = _aspect(item.name), _size(item.name)
    bw = slot_w * FILL
    bh = bw / aspect
    if bh > slot_h * FILL:
        bh = slot_h * FILL
        bw = bh * aspect
    bw, bh = bw * size, bh * size
    if valign == "fill":
        bh = slot_h
    out: list[Box] = []
    for k in range(item.count):
        r, c = divmod(k, cols)
        in_row = min(cols, item.count - r * cols)
        offset = (cols - in_row) * slot_w / 2  # centre a short last row
        sx0 = x0 + offset + c * slot_w
        sy0 = y0 + r * slot_h
        free_x, free_y = slot_w - bw, slot_h - bh
        if halign == "left":
            bx = sx0
        elif halign == "right":
            bx = sx0 + free_x
        else:
            bx = sx0 + free_x / 2 + rng.uniform(-1, 1) * free_x * JITTER / 2
        if valign in ("top", "fill"):
            by = sy0
        elif valign == "bottom":
            by = sy0 + free_y
        elif valign == "middle":
            by = sy0 + free_y / 2
        else:
            by = sy0 + free_y / 2 + rng.uniform(-1, 1) * free_y * JITTER / 2
        out.append((round(bx, 4), round(by, 4), round(bx + bw, 4), round(by + bh, 4)))
    return out
