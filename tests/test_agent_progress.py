"""The progress line every face shows counts the render's own steps: a strategy's side pass on a
coarser schedule (Stitch's object rows) is named as such, never "step 2/12" of a 20-step image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from scenewright import Agent
from scenewright.agent.nodes import progress_message
from scenewright.executor.sampler import StepContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _step(step: int, num_steps: int) -> StepContext:
    return StepContext(step, num_steps, torch.tensor(0.0), 1.0, torch.zeros(1), 64, 64)


def test_a_side_pass_is_not_counted_as_the_image_steps() -> None:
    assert progress_message("auto", _step(1, 20), 20) == "auto: step 2/20"
    side = progress_message("auto", _step(1, 12), 20)
    assert side == "auto: side pass, step 2 of its 12 (the image takes 20 steps)"
    assert "2/12" not in side


def test_the_streamed_steps_are_the_turn_s_own(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    Agent(steps=3, strategy="vanilla", out_dir=tmp_path).run("a red circle", on_event=events.append)
    steps = [e["message"] for e in events if e["node"] == "execute" and ": step" in e["message"]]
    assert steps == ["vanilla: step 1/3", "vanilla: step 2/3", "vanilla: step 3/3"]
