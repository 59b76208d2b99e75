"""Stitch's paper mode: every addition of ours off, named options, and a clear refusal."""

from __future__ import annotations

import inspect

import pytest
import torch

from scenewright.errors import InvalidInputError
from scenewright.executor import stitch
from scenewright.executor.attention.masks import mass_cutout
from scenewright.executor.stitch.render import MODES, PAPER_VALUES, render_stitch
from scenewright.executor.strategies import parse_options


def test_unknown_mode_is_one_line_naming_the_modes() -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_options(render_stitch, "stitch", "mode=nope")
    text = str(error.value)
    assert "\n" not in text and "use one of auto, paper, ours" in text


def test_paper_values_are_valid_options_of_stitch() -> None:
    parameters = inspect.signature(render_stitch).parameters
    for key, value in PAPER_VALUES.items():
        assert key in parameters and key in stitch.OPTIONS
        stitch.OPTIONS[key].check("stitch", key, value)  # within the declared bounds
    assert MODES == ("auto", "paper", "ours")


def test_paper_turns_every_addition_off() -> None:
    """The additions listed in docs/parity.md, each at its off value in paper mode."""
    off = {
        "object_pass": "box", "hold_fraction": 0.0, "image_attention": "region", "text_boost": 0.0,
        "region_guidance": 0.0, "noise_tries": 1, "pooled": "scene", "recheck_tries": 0,
        "seam_fraction": 0.0, "canvas_fraction": 0.0, "borrow_share": 0.0, "guidance_steps": "model",
        "finish_prompt": "global", "cutout_kernel": 5, "keep_mass": 0.95, "object_fraction": 0.2,
    }  # fmt: skip
    assert off == PAPER_VALUES


def test_cutout_kernel_grows_by_half_the_kernel() -> None:
    attention = torch.zeros(9, 9)
    attention[4, 4] = 1.0
    box = torch.ones(9, 9, dtype=torch.bool)
    assert int(mass_cutout(attention, box, 0.95).sum()) == 9
    assert int(mass_cutout(attention, box, 0.95, kernel=5).sum()) == 25
