"""Paper mode: every strategy's own defaults are its authors', a backend's tuning is applied on
top unless ``mode=paper``, and options in the strategy string win in both modes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import scenewright
from scenewright.errors import InvalidInputError
from scenewright.executor.attention.masks import mass_cutout
from scenewright.executor.stitch.render import render_stitch
from scenewright.executor.strategies import parse_options, resolve_options

TINY16 = Path(scenewright.__file__).parent / "models" / "toyworld16" / "strategy_defaults.json"


def _tuned_backend() -> Any:
    return SimpleNamespace(strategy_defaults=json.loads(TINY16.read_text()))


def test_unknown_mode_is_one_line_naming_the_modes() -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_options(render_stitch, "stitch", "mode=nope")
    text = str(error.value)
    assert "\n" not in text and "use one of tuned, paper" in text


def test_stitch_defaults_are_the_papers() -> None:
    """The paper's method (docs/parity.md): boxes drawn in their own pass for the first 20% of the
    steps, 95% of the head's mass max-pooled 5 x 5, the global prompt after ("auto" is the global
    prompt on every model that learned layout words), every addition off."""
    defaults = {k: p.default for k, p in inspect.signature(render_stitch).parameters.items()}
    paper = {
        "object_pass": "box", "keep_mass": 0.95, "cutout_kernel": 5, "finish_prompt": "auto",
        "hold_fraction": 0.0, "image_attention": "region", "text_boost": 0.0,
        "noise_tries": 1, "pooled": "scene", "seam_fraction": 0.0,
        "canvas_fraction": 0.0, "borrow_share": 0.0, "guidance_steps": "model",
    }  # fmt: skip
    assert {k: defaults[k] for k in paper} == paper


def test_paper_mode_leaves_the_backends_tuning_out_and_keeps_named_options() -> None:
    backend = _tuned_backend()
    tuned = resolve_options(render_stitch, "stitch", backend)
    assert tuned["cutout_kernel"] == 3 and tuned["borrow_share"] == 0.35  # tiny16's own tuning
    assert resolve_options(render_stitch, "stitch:mode=tuned", backend) == tuned
    assert resolve_options(render_stitch, "stitch:mode=paper", backend) == {}
    assert resolve_options(render_stitch, "stitch:mode=paper:text_boost=2", backend) == {"text_boost": 2.0}
    assert resolve_options(render_stitch, "stitch:cutout_kernel=7", backend)["cutout_kernel"] == 7
    # A backend with no tuning (FLUX.1, SD3.5) runs the paper's method in either mode.
    assert resolve_options(render_stitch, "stitch", SimpleNamespace(strategy_defaults={})) == {}


def test_cutout_kernel_grows_by_half_the_kernel() -> None:
    attention = torch.zeros(9, 9)
    attention[4, 4] = 1.0
    box = torch.ones(9, 9, dtype=torch.bool)
    assert int(mass_cutout(attention, box, 0.95).sum()) == 9
    assert int(mass_cutout(attention, box, 0.95, kernel=5).sum()) == 25
