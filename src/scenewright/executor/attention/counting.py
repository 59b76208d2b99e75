"""The (query, key) pairs the engine's kernels compute, tallied for benchmarks.

Why: a benchmark that prices attention as (text + image tokens)^2 a block overstates what a masked
pass costs. Regional's region pass over a partition is a handful of small unmasked passes; a
block-sparse FlexAttention pass skips the blocks its mask drops. The engine knows which kernel ran
each pass and what it computed, so it reports that here, and ``scenewright.bench.work`` prices the
pairs actually computed instead of a dense upper bound.

Nothing is kept unless a :func:`tallying` block is open: the engine's cost outside benchmarks is
one context-variable read a pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

# "joint": the attention every MMDiT block runs over [text; image]; "image": SD3.5's second
# attention over the image tokens alone (MMDiT-X blocks).
KINDS = ("joint", "image")


@dataclass
class PairTally:
    """Pairs computed (batch x queries x keys, summed over passes) and passes, by kind.

    A pass is one block's attention of one kind: a regional block's region pass and base pass
    together make one joint pass.
    """

    joint_pairs: int = 0
    joint_passes: int = 0
    image_pairs: int = 0
    image_passes: int = 0
    # Token rows a block ran beyond the transformer's input (batch x tokens, summed over blocks):
    # regional's copy of the image tokens carried through the single-stream blocks.
    extra_rows: int = 0

    def add(self, kind: str, pairs: int) -> None:
        if kind == "joint":
            self.joint_pairs += pairs
            self.joint_passes += 1
        elif kind == "image":
            self.image_pairs += pairs
            self.image_passes += 1
        else:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


_OPEN: ContextVar[tuple[PairTally, ...]] = ContextVar("scenewright_pair_tallies", default=())


def tallying_pairs() -> bool:
    """Whether any tally is open (callers skip the arithmetic otherwise)."""
    return bool(_OPEN.get())


def record_pass(kind: str, pairs: int) -> None:
    """Add one pass of ``kind`` that computed ``pairs`` to every open tally."""
    for tally in _OPEN.get():
        tally.add(kind, pairs)


def record_rows(rows: int) -> None:
    """Add ``rows`` token rows that one block ran beyond the transformer's input."""
    for tally in _OPEN.get():
        tally.extra_rows += rows


@contextmanager
def tallying() -> Iterator[PairTally]:
    """Tally every pass the engine runs inside the block (nested blocks each get them all)."""
    tally = PairTally()
    token = _OPEN.set((*_OPEN.get(), tally))
    try:
        yield tally
    finally:
        _OPEN.reset(token)


__all__ = ["KINDS", "PairTally", "record_pass", "record_rows", "tallying", "tallying_pairs"]
