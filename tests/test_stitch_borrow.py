"""The box pass's empty boxes borrowing a sibling's draft, and the canvas the finish holds empty."""

from __future__ import annotations

import torch

from scenewright.executor.composition import Region
from scenewright.executor.stitch.borrow import BoxDraft, borrow_drafts, box_shift
from scenewright.executor.stitch.hold import canvas_tokens

GRID = (6, 6)
TOP_LEFT = (0.0, 0.0, 0.5, 0.5)  # rows 0-2, columns 0-2
BOTTOM_RIGHT = (0.5, 0.5, 1.0, 1.0)  # rows 3-5, columns 3-5
TOP_RIGHT = (0.5, 0.0, 1.0, 0.5)  # rows 0-2, columns 3-5


def _draft(seed: int, content: float, channels: int = 2) -> BoxDraft:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, GRID[0] * GRID[1], channels, generator=generator)
    clean = torch.randn(1, GRID[0] * GRID[1], channels, generator=generator)
    return BoxDraft(tokens=tokens, clean=clean, content=content)


def _flat(rows: range, cols: range) -> torch.Tensor:
    return torch.tensor([r * GRID[1] + c for r in rows for c in cols])


def test_an_empty_box_takes_its_fullest_siblings_clean_draft_with_its_own_noise() -> None:
    regions = [
        Region(0, "a red circle", TOP_LEFT),
        Region(0, "a red circle", BOTTOM_RIGHT),
        Region(1, "a blue star", TOP_RIGHT),
    ]
    drafts = [_draft(1, 0.9), _draft(2, 0.0), _draft(3, 0.0)]
    tokens = torch.randn(1, GRID[0] * GRID[1], 2, generator=torch.Generator().manual_seed(4))
    before = tokens.clone()
    sigma = 0.6
    filled = borrow_drafts(regions, drafts, tokens, GRID, sigma, share=0.35)
    # The second circle borrows from the first; the star has no sibling and keeps its tokens.
    assert filled == [1]
    target, source = _flat(range(3, 6), range(3, 6)), _flat(range(0, 3), range(0, 3))
    own = drafts[1]
    noise = (own.tokens[:, target] - (1 - sigma) * own.clean[:, target]) / sigma
    expected = (1 - sigma) * drafts[0].clean[:, source] + sigma * noise
    assert torch.allclose(tokens[:, target], expected, atol=1e-6)
    untouched = torch.ones(GRID[0] * GRID[1], dtype=torch.bool)
    untouched[target] = False
    assert torch.equal(tokens[:, untouched], before[:, untouched])


def test_boxes_at_the_share_or_without_a_full_sibling_are_left_alone() -> None:
    regions = [Region(0, "a red circle", TOP_LEFT), Region(0, "a red circle", BOTTOM_RIGHT)]
    tokens = torch.zeros(1, GRID[0] * GRID[1], 2)
    # Content at the share counts as drawn: nothing to fill.
    assert borrow_drafts(regions, [_draft(1, 0.9), _draft(2, 0.35)], tokens, GRID, 0.6, 0.35) == []
    # Both empty: no sibling to borrow from.
    assert borrow_drafts(regions, [_draft(1, 0.1), _draft(2, 0.0)], tokens, GRID, 0.6, 0.35) == []
    assert not tokens.any()


def test_the_draft_is_moved_centre_onto_centre_and_never_read_outside_the_siblings_box() -> None:
    # A 2x2 source box in the top-left corner and a 4x4 target: the shift carries the source's
    # centre onto the target's; target tokens whose source falls outside the 2x2 box keep theirs.
    small, large = (0.0, 0.0, 2 / 6, 2 / 6), (2 / 6, 2 / 6, 1.0, 1.0)
    regions = [Region(0, "a red circle", small), Region(0, "a red circle", large)]
    assert box_shift(regions[1], regions[0], GRID) == (3, 3)
    drafts = [_draft(1, 0.9), _draft(2, 0.0)]
    tokens = torch.zeros(1, GRID[0] * GRID[1], 2)
    assert borrow_drafts(regions, drafts, tokens, GRID, 0.5, 0.35) == [1]
    changed = tokens.abs().sum(dim=-1)[0] > 0
    assert torch.equal(changed.nonzero().flatten(), _flat(range(3, 5), range(3, 5)))


def test_the_canvas_is_every_token_outside_the_boxes() -> None:
    regions = [Region(0, "a red circle", TOP_LEFT), Region(1, "a blue star", BOTTOM_RIGHT)]
    canvas = canvas_tokens(regions, GRID).reshape(GRID)
    expected = torch.ones(GRID, dtype=torch.bool)
    expected[0:3, 0:3] = False
    expected[3:6, 3:6] = False
    assert torch.equal(canvas, expected)
