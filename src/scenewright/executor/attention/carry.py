"""The base prompt's own image stream through FLUX's single-stream blocks, as the authors carry it.

Regional-Prompting-FLUX runs the base prompt as a second stream. Through the double blocks it is
text only (the image tokens are one stream, blended), but at the first single-stream block the
base stream takes a copy of the image tokens, and from there only the base pass updates that copy
(with the block's own norm, MLP and residual); the blended image tokens go on as the regional
stream's and are the ones the model outputs. We carry the copy as extra tokens after the text:
a block treats tokens one by one except in attention, where the engine lets the copy take part in
the base pass only (``engine.carried`` says how many tokens it has). The copy gets the image
tokens' rotary positions, and is dropped after the last single block. FLUX.2's single blocks take
[text; image] as one tensor: the copy goes between the two, where FLUX.1's text stream ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from scenewright.executor.attention.counting import record_rows, tallying_pairs
from scenewright.executor.attention.view import EngineView

if TYPE_CHECKING:
    from scenewright.executor.attention.edits import RegionMask


def with_copy(rotary: Any, carried: int) -> Any:
    """The rotary (cos, sin) over [text; image] extended to [text; image copy; image]."""
    if rotary is None:
        return None
    return tuple(torch.cat([t[:-carried], t[-carried:], t[-carried:]]) for t in rotary)


def carry_base_image(engine: EngineView, region: RegionMask, blocks: Sequence[Any]) -> list[Any]:
    """Hooks on the single-stream ``blocks``: at the first, during the regional steps, append a
    copy of the image tokens to the text stream; in each, give the copy its rotary positions;
    after the last, drop it."""
    first, last = blocks[0], blocks[-1]
    extended: dict[str, Any] = {}

    def enter(block: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if "hidden_states" not in kwargs:
            raise RuntimeError("carrying the base image stream needs the blocks called with keywords")
        if kwargs.get("encoder_hidden_states") is None:  # FLUX.2, Chroma: one [text; image] input
            return _enter_joined(block, kwargs)
        if block is first:
            engine.carried = 0
            extended.clear()
            if region.steps_on(engine.step):
                image = kwargs["hidden_states"]
                kwargs["encoder_hidden_states"] = torch.cat([kwargs["encoder_hidden_states"], image], dim=1)
                engine.carried = image.shape[1]
        if engine.carried:
            if tallying_pairs():  # the copy's rows are work the transformer's input does not show
                record_rows(kwargs["hidden_states"].shape[0] * engine.carried)
            rotary = kwargs.get("image_rotary_emb")
            if extended.get("from") is not rotary:
                extended.update({"from": rotary, "to": with_copy(rotary, engine.carried)})
            kwargs["image_rotary_emb"] = extended["to"]
        return args, kwargs

    def _enter_joined(block: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The same for blocks that take [text; image] as one sequence (and a token mask): the
        copy goes between the text and the image."""
        joined = kwargs["hidden_states"]
        n_image = engine.grid[0] * engine.grid[1]
        if block is first:
            engine.carried = 0
            extended.clear()
        if block is first and region.steps_on(engine.step):
            text, image = joined[:, :-n_image], joined[:, -n_image:]
            kwargs["hidden_states"] = torch.cat([text, image, image], dim=1)
            mask = kwargs.get("attention_mask")
            if mask is not None:
                kwargs["attention_mask"] = torch.cat([mask, mask[:, -n_image:]], dim=1)
            engine.carried = n_image
        if engine.carried:
            if tallying_pairs():
                record_rows(joined.shape[0] * engine.carried)
            rotary = kwargs.get("image_rotary_emb")
            if extended.get("from") is not rotary:
                extended.update({"from": rotary, "to": with_copy(rotary, engine.carried)})
            kwargs["image_rotary_emb"] = extended["to"]
        return (), kwargs

    def leave(block: Any, args: Any, output: Any) -> Any:
        carried, engine.carried = engine.carried, 0
        if not carried:
            return None
        if isinstance(output, torch.Tensor):  # FLUX.2, Chroma: drop the copy from [text; copy; image]
            return torch.cat([output[:, : -2 * carried], output[:, -carried:]], dim=1)
        text, image = output
        return text[:, :-carried], image

    handles = [block.register_forward_pre_hook(enter, with_kwargs=True) for block in blocks]
    handles.append(last.register_forward_hook(leave))
    return handles
