"""Deterministic layout engine: boxes for every instance that honour the plan's relations.

The relations decide the structure: objects tied by "above", "below", "on" or "under" share a
column, ordered into levels top to bottom; columns are ordered left to right by the horizontal
relations. Each object's instances form a grid (rows for counts, a row for what rests on
something), and :mod:`scenewright.planner.canvas` scales the whole tree as large as the canvas
allows, with one slot size for every object. The grids, and the wrapping of unrelated columns
into several bands, are chosen to make that slot largest, so five objects are two bands of
large boxes rather than one thin row. Boxes are never smaller than ``min_side`` (the backend's
smallest drawable box, :data:`~scenewright.planner.canvas.MIN_BOX_SIDE` for the embedded model)
unless the scene cannot fit, which is said. Different objects get disjoint cells, so their boxes
never overlap; "on"/"under" pairs share a cell edge so that they touch. Relations that contradict
earlier ones are dropped with a warning, and every kept relation is checked on the final boxes
(``geometry``), so a returned layout always satisfies what it claims. Same inputs and seed give
the same boxes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scenewright.planner.canvas import (
    GUTTER,
    MARGIN,
    MAX_SLOT,
    MIN_BOX_SIDE,
    Leaf,
    Node,
    Rect,
    Split,
    fit_unit,
    place,
)
from scenewright.planner.geometry import Box, between_holds, group_holds
from scenewright.planner.lexicon import ASPECT_PRIORS, SIZE_PRIORS

FILL = 0.88  # share of its grid slot an instance's box takes before the size prior
JITTER = 0.35  # share of a slot's free space a box may move by, from the seed
MAX_BANDS = 3  # unrelated columns wrap into at most this many bands
DESCENT_PASSES = 3  # rounds of trying each object's other grids

_VERTICAL = frozenset({"above", "below", "on", "under"})
_HORIZONTAL = frozenset({"left of", "right of", "next to", "between"})
_TIGHT = frozenset({"on", "under"})

RelationTriple = tuple[int, str, int]


@dataclass(frozen=True)
class LayoutItem:
    """What the engine needs to know of one object: its noun, count, canvas anchor and scale."""

    name: str
    count: int
    anchor: str | None = None  # "left", "right", "top", "bottom", "center", "top left"... or None
    scale: float = 1.0  # slot size against the other objects' ("make the circles bigger": 1.4)

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
    unit: float = 0.0  # the slot side every object got (before aspect and scale)


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


def _aspect(name: str) -> float:
    return ASPECT_PRIORS.get(name, ASPECT_PRIORS.get(name.split()[-1], 1.0))


def _size(name: str) -> float:
    return SIZE_PRIORS.get(name, SIZE_PRIORS.get(name.split()[-1], 0.85))


def _slot(item: LayoutItem) -> tuple[float, float]:
    """An instance's slot in units of the common slot side: its shorter side is ``scale``."""
    aspect = _aspect(item.name)
    return max(1.0, aspect) * item.scale, max(1.0, 1.0 / aspect) * item.scale


def _grid_options(count: int, single_row: bool, slot: tuple[float, float]) -> list[tuple[int, int]]:
    """The rows x cols grids worth trying for ``count`` instances, squarest first."""
    if single_row:
        return [(1, count)]
    grids = {(math.ceil(count / cols), cols) for cols in range(1, count + 1)}
    grids = {g for g in grids if not any(o != g and o[0] <= g[0] and o[1] <= g[1] for o in grids)}
    return sorted(grids, key=lambda g: (abs(g[0] * slot[1] - g[1] * slot[0]), g[0] * g[1], g[0]))


def _split_points(columns: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Where the column sequence may wrap into a new band: after column k when no horizontal
    edge (stated, anchored or "next to") joins a column up to k with one after it."""
    return [k for k in range(columns - 1) if not any(min(a, b) <= k < max(a, b) for a, b in edges)]


def _bands(columns: int, cuts: Sequence[int]) -> list[list[int]]:
    bounds = [-1, *sorted(cuts), columns - 1]
    return [list(range(lo + 1, hi + 1)) for lo, hi in itertools.pairwise(bounds)]


def _ends(first: set[str | None], last: set[str | None], lead: str, tail: str) -> tuple[float, float]:
    """End shares of a split whose first and last children carry these anchors."""
    return (0.0 if first == {lead} else 0.5) + (0.5 if last == {tail} else 0.0), (
        0.0 if last == {tail} else 0.5
    ) + (0.5 if first == {lead} else 0.0)


def _search(build: Callable[[dict[int, int], list[list[int]]], Node], options: dict[int, list[tuple[int, int]]],
            columns: int, cuts: list[int]) -> tuple[dict[int, int], list[list[int]], float]:  # fmt: skip
    """Grid choices and bands that give the largest common slot: coordinate descent over each
    object's grids, then every way of wrapping into at most MAX_BANDS bands, then descent again."""
    choice = dict.fromkeys(options, 0)
    bands = _bands(columns, [])
    seen: dict[tuple[tuple[int, ...], tuple[tuple[int, ...], ...]], float] = {}

    def unit_of(choice: dict[int, int], bands: list[list[int]]) -> float:
        key = (tuple(choice.values()), tuple(map(tuple, bands)))
        if key not in seen:
            seen[key] = fit_unit(build(choice, bands))
        return seen[key]

    def descend(choice: dict[int, int], bands: list[list[int]], best: float) -> tuple[dict[int, int], float]:
        for _ in range(DESCENT_PASSES):
            if best >= MAX_SLOT - 1e-9:
                break  # as large as a slot gets: nothing to gain
            improved = False
            for i, grids in options.items():
                for k in range(len(grids)):
                    if k == choice[i]:
                        continue
                    trial = {**choice, i: k}
                    unit = unit_of(trial, bands)
                    if unit > best + 1e-6:
                        choice, best, improved = trial, unit, True
            if not improved:
                break
        return choice, best

    best = unit_of(choice, bands)
    choice, best = descend(choice, bands, best)
    wrapped = None
    for size in range(1, MAX_BANDS) if best < MAX_SLOT - 1e-9 else ():
        for picked in itertools.combinations(cuts, size):
            trial_bands = _bands(columns, list(picked))
            unit = unit_of(choice, trial_bands)
            if unit > best + 1e-6:
                best, wrapped = unit, trial_bands
    if wrapped is not None:
        bands = wrapped
        choice, best = descend(choice, bands, best)
    return choice, bands, best


def layout(
    items: Sequence[LayoutItem],
    relations: Sequence[RelationTriple],
    seed: int = 0,
    min_side: float = MIN_BOX_SIDE,
) -> LayoutResult:
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
    tight = {i for s, rel, o in accepted if rel in _TIGHT for i in (s, o)}
    on_subjects = {s for s, rel, _ in accepted if rel == "on"}
    under_subjects = {s for s, rel, _ in accepted if rel == "under"}
    on_objects = {o for _, rel, o in accepted if rel == "on"}
    under_objects = {o for _, rel, o in accepted if rel == "under"}
    halign: dict[int, str] = {}
    for s, rel, o in accepted:
        if rel == "next to":
            halign.setdefault(s, "right")
            halign.setdefault(o, "left")
    for i, item in enumerate(items):
        if item.horizontal is not None:
            halign.setdefault(i, item.horizontal)
    valign: dict[int, str] = {}
    for i in range(n):
        needs_bottom = i in on_subjects or i in under_objects
        needs_top = i in under_subjects or i in on_objects
        if needs_bottom and needs_top:
            valign[i] = "fill"  # in a stack: touch the level above and the one below
        elif needs_bottom:
            valign[i] = "bottom"
        elif needs_top:
            valign[i] = "top"
        elif i in halign and items[i].horizontal is None:
            valign[i] = "middle"  # side by side: same height, no vertical jitter
        elif (end := items[i].vertical) is not None:
            valign[i] = end

    columns: list[list[list[int]]] = []  # column -> levels (top first) -> items
    for root in column_order:
        members = [i for i in range(n) if uf.find(i) == root]
        levels = sorted({height[i] for i in members}, reverse=True)
        columns.append([[i for i in members if height[i] == lv] for lv in levels])
    column_of = {i: k for k, col in enumerate(columns) for level in col for i in level}
    neighbours = {tuple(sorted((column_of[s], column_of[o]))) for s, rel, o in accepted if rel == "next to"}
    touching = [
        [
            any(b in lower for a in upper for b in tight_objects.get(a, []))
            or any(a in upper for b in lower for a in tight_objects.get(b, []))
            for upper, lower in itertools.pairwise(col)
        ]
        for col in columns
    ]
    slots = {i: _slot(items[i]) for i in range(n)}
    options = {i: _grid_options(items[i].count, i in tight, slots[i]) for i in range(n)}

    def leaf(i: int, choice: dict[int, int]) -> Leaf:
        rows, cols = options[i][choice[i]]
        return Leaf(i, rows, cols, *slots[i])

    def row_ends(members: Sequence[int], first: list[int], last: list[int]) -> tuple[float, float]:
        del members
        return _ends(
            {items[i].horizontal for i in first}, {items[i].horizontal for i in last}, "left", "right"
        )

    def build(choice: dict[int, int], bands: list[list[int]]) -> Node:
        band_nodes: list[Node] = []
        for band in bands:
            column_nodes: list[Node] = []
            for k in band:
                level_nodes: list[Node] = []
                for level in columns[k]:
                    if len(level) == 1:
                        level_nodes.append(leaf(level[0], choice))
                    else:
                        ends = row_ends(level, level[:1], level[-1:])
                        level_nodes.append(Split("row", [leaf(i, choice) for i in level], ends=ends))
                gaps = [0.0 if t else GUTTER for t in touching[k]]
                ends = _ends(
                    {items[i].vertical for i in columns[k][0]},
                    {items[i].vertical for i in columns[k][-1]},
                    "top",
                    "bottom",
                )
                column_nodes.append(Split("stack", level_nodes, gaps, [not t for t in touching[k]], ends))
            grows = [(a, b) not in neighbours for a, b in itertools.pairwise(band)]
            first = [i for level in columns[band[0]] for i in level]
            last = [i for level in columns[band[-1]] for i in level]
            ends = row_ends(band, first, last)
            band_nodes.append(Split("row", column_nodes, grows=grows, ends=ends))
        return Split("stack", band_nodes)

    hard_edges = [(column_of[a], column_of[b]) for a, b in horizontal]
    hard_edges += [(column_of[s], column_of[o]) for s, rel, o in placed if rel == "next to"]
    cuts = _split_points(len(columns), hard_edges)
    choice, bands, unit = _search(build, options, len(columns), cuts)
    tree = build(choice, bands)
    unit = min(fit_unit(tree), _anchor_cap(tree, bands, columns, items))
    rects = place(tree, unit)
    shortest = min(unit * min(slots[i]) for i in range(n)) if n else 1.0
    if shortest < min_side - 1e-6:
        warnings.append(
            f"{sum(item.count for item in items)} instances fit only in boxes of side {shortest:.2f}, under "
            f"the {min_side:.2f} the model draws reliably; some may be missed (ask for fewer objects)"
        )

    rng = random.Random(seed)
    boxes = {
        i: _pack(
            items[i],
            rects[i],
            options[i][choice[i]],
            unit,
            valign.get(i, "center"),
            halign.get(i, "center"),
            rng,
            min_side,
        )
        for i in range(n)
    }
    for s, rel, o in accepted:
        if rel in _TIGHT:
            boxes[o] = _cover(boxes[o], boxes[s], rects[o])
        elif rel == "next to" and not group_holds(rel, boxes[s], boxes[o]):
            _align_row(boxes, s, o, columns, column_of, rects)
    result = [boxes[i] for i in range(n)]
    return _verified(items, relations, kept, result, warnings, unit)


def _anchor_cap(
    root: Node, bands: list[list[int]], columns: list[list[list[int]]], items: Sequence[LayoutItem]
) -> float:
    """A slot small enough that a lone anchored column stays in its half of the canvas ("a cat
    on the right" has its whole box right of the middle, "at the top" above it)."""
    cap = MAX_SLOT
    assert isinstance(root, Split)
    for band, band_node in zip(bands, root.children, strict=True):
        assert isinstance(band_node, Split)
        for k, column in zip(band, band_node.children, strict=True):
            members = [i for level in columns[k] for i in level]
            sides = {items[i].horizontal for i in members}
            if len(band) == 1 and len(sides) == 1 and None not in sides:
                cap = min(cap, fit_unit(column, width=0.5 + MARGIN))
            ends = {items[i].vertical for i in members}
            if len(bands) == 1 and len(columns[k]) == 1 and len(ends) == 1 and None not in ends:
                cap = min(cap, fit_unit(column, height=0.5 + MARGIN))
    return cap


def _verified(
    items: Sequence[LayoutItem],
    relations: Sequence[RelationTriple],
    kept: list[int],
    result: list[list[Box]],
    warnings: list[str],
    unit: float,
) -> LayoutResult:
    """Keep only the relations the final boxes honour, each one dropped with a warning."""
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
    return LayoutResult(result, final_kept, warnings, round(unit, 4))


def _cover(support: list[Box], resting: list[Box], rect: Rect) -> list[Box]:
    """A lone supporting box ("the table") widened, within its cell, under every centre of what
    rests on it or hangs from it, so that "on"/"under" hold for each of those instances."""
    if len(support) != 1 or not resting:
        return support
    x0, y0, x1, y1 = support[0]
    pad = 0.25 * min(b[2] - b[0] for b in resting)
    lo = min(x0, min((b[0] + b[2]) / 2 for b in resting) - pad)
    hi = max(x1, max((b[0] + b[2]) / 2 for b in resting) + pad)
    return [(round(max(lo, rect[0]), 4), y0, round(min(hi, rect[2]), 4), y1)]


def _align_row(
    boxes: dict[int, list[Box]],
    s: int,
    o: int,
    columns: list[list[list[int]]],
    column_of: dict[int, int],
    rects: dict[int, Rect],
) -> None:
    """ "next to" partners at different heights: move the one alone in its column level with the
    other (alone, it cannot meet anything else on the way)."""
    for lone, partner in ((s, o), (o, s)):
        if sum(len(level) for level in columns[column_of[lone]]) != 1:
            continue
        top = min(b[1] for b in boxes[lone])
        bottom = max(b[3] for b in boxes[lone])
        target = (min(b[1] for b in boxes[partner]) + max(b[3] for b in boxes[partner])) / 2
        dy = target - (top + bottom) / 2
        dy = min(max(dy, rects[lone][1] - top), rects[lone][3] - bottom)
        boxes[lone] = [(b[0], round(b[1] + dy, 4), b[2], round(b[3] + dy, 4)) for b in boxes[lone]]
        return


def _pack(
    item: LayoutItem,
    rect: Rect,
    grid: tuple[int, int],
    unit: float,
    valign: str,
    halign: str,
    rng: random.Random,
    min_side: float,
) -> list[Box]:
    """Boxes for the instances of one object: its rows x cols grid of slots placed in its cell
    (to a side, or centred with a seeded jitter), each box ``FILL`` of its slot times the size
    prior but never under ``min_side`` while the slot allows it."""
    x0, y0, x1, y1 = rect
    rows, cols = grid
    sw, sh = _slot(item)
    slot_w = min(sw * unit, (x1 - x0) / cols)
    slot_h = min(sh * unit, (y1 - y0) / rows)
    share = FILL * _size(item.name)
    short = min(slot_w, slot_h)
    if short > 0:
        share = min(1.0, max(share, min_side / short))
    bw, bh = slot_w * share, slot_h * share
    if valign == "fill":
        slot_h = bh = (y1 - y0) / rows
    free_x, free_y = (x1 - x0) - cols * slot_w, (y1 - y0) - rows * slot_h
    gx = x0 + {"left": 0.0, "right": free_x}.get(
        halign, free_x / 2 + rng.uniform(-1, 1) * free_x * JITTER / 2
    )
    gy = y0 + {"top": 0.0, "fill": 0.0, "bottom": free_y, "middle": free_y / 2}.get(
        valign, free_y / 2 + rng.uniform(-1, 1) * free_y * JITTER / 2
    )
    out: list[Box] = []
    for k in range(item.count):
        r, c = divmod(k, cols)
        in_row = min(cols, item.count - r * cols)
        sx0 = gx + (cols - in_row) * slot_w / 2 + c * slot_w  # a short last row is centred
        sy0 = gy + r * slot_h
        fx, fy = slot_w - bw, slot_h - bh
        bx = sx0 + {"left": 0.0, "right": fx}.get(halign, fx / 2 + rng.uniform(-1, 1) * fx * JITTER / 2)
        by = sy0 + {"top": 0.0, "fill": 0.0, "bottom": fy, "middle": fy / 2}.get(
            valign, fy / 2 + rng.uniform(-1, 1) * fy * JITTER / 2
        )
        out.append((round(bx, 4), round(by, 4), round(bx + bw, 4), round(by + bh, 4)))
    return out
