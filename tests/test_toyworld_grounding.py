"""The grounding loss: the right words, the right pixels, the attention the block really ran."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from scenewright.backends.base import PromptEncoding
from scenewright.backends.flux import flux_forward
from scenewright.backends.tiny import TinyConfig, build_components, build_tokenizer
from scenewright.toyworld.batches import SceneRecipe, render_scenes
from scenewright.toyworld.grounding import (
    AttentionGrounding,
    GroundingTarget,
    grounding_targets,
    group_masks,
    group_tokens,
)
from scenewright.toyworld.train import TrainConfig, Trainer, training_command

SMALL = TinyConfig(double_blocks=2, single_blocks=1, text_layers=1, heads=2, head_dim=16, text_width=32)


def _offsets(caption: str) -> list[tuple[int, int]]:
    tokenizer = build_tokenizer(24)
    encoded = tokenizer([caption], padding="max_length", max_length=24, return_offsets_mapping=True)
    return [tuple(span) for span in encoded.offset_mapping[0]]


def test_group_tokens_are_the_colour_and_the_noun_where_they_stand_together() -> None:
    caption = "the scene: three red circles with a blue star at night"
    offsets = _offsets(caption)
    # [BOS] the scene : three red circles with a blue star at night [EOS]
    assert group_tokens(caption, offsets, "red", "circle") == [5, 6]
    assert group_tokens(caption, offsets, "blue", "star") == [9, 10]
    assert group_tokens(caption, offsets, "green", "star") == []
    split = "three red zebra circles"
    assert group_tokens(split, _offsets(split), "red", "circle") == []
    assert group_tokens("", _offsets(""), "red", "circle") == []


def test_group_masks_cover_each_groups_shapes_on_the_token_grid() -> None:
    objects = [("red", "square", (0.0, 0.0, 16.0, 16.0)), ("red", "square", (32.0, 32.0, 48.0, 48.0))]
    objects.append(("blue", "circle", (40.0, 0.0, 64.0, 24.0)))
    masks = group_masks(objects, grid=16, image_size=64)
    red = masks[("red", "square")]
    assert red.shape == (16, 16)
    assert red[:4, :4].min() == pytest.approx(1.0) and red[8:12, 8:12].min() == pytest.approx(1.0)
    assert red.sum() == pytest.approx(32.0, abs=0.5) and red.max() <= 1.0
    assert masks[("blue", "circle")][:4, :4].sum() == 0


def test_rendered_batches_carry_each_scenes_objects() -> None:
    batch = render_scenes(3, SceneRecipe(seed=1, batch=6, caption_dropout=0.0))
    assert len(batch.objects) == 6
    for caption, objects in zip(batch.captions, batch.objects, strict=True):
        assert objects
        for color, shape, box in objects:
            assert color in caption and shape in caption
            assert 0 <= box[0] < box[2] <= 64


Components = tuple[torch.nn.Module, PromptEncoding, int]


def _components() -> Components:
    """A small transformer and an encoded batch of two captions."""
    torch.manual_seed(0)
    transformer, text_encoder, tokenizer, _ = build_components(SMALL, 0)
    captions = ["a red circle and a blue star", "two green squares"]
    ids = tokenizer(
        captions, padding="max_length", max_length=SMALL.max_text_tokens, return_tensors="pt"
    ).input_ids
    text = text_encoder(ids)
    encoding = PromptEncoding(captions, text.last_hidden_state, text.pooler_output)
    return transformer, encoding, SMALL.image_size // SMALL.patch


def _forward(components: Components) -> torch.Tensor:
    transformer, encoding, grid = components
    latents = torch.randn(2, grid * grid, 3 * SMALL.patch**2, generator=torch.Generator().manual_seed(1))
    return flux_forward(transformer, latents, torch.tensor([500.0]), encoding, (grid, grid), None, None)


def test_recorded_probabilities_are_the_attention_the_block_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    components = _components()
    plain = _forward(components)
    ran: list[torch.Tensor] = []
    sdpa = F.scaled_dot_product_attention

    def watching(
        query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        ran.append(((query @ key.transpose(-1, -2)) * query.shape[-1] ** -0.5).softmax(dim=-1).detach())
        return sdpa(query, key, value, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", watching)
    recorder = AttentionGrounding(components[0])
    hooked = _forward(components)
    assert torch.equal(plain, hooked)  # the hook reads; it changes nothing
    grid, n_text = components[2], SMALL.max_text_tokens
    assert len(recorder.probabilities) == SMALL.double_blocks
    assert len(ran) == SMALL.double_blocks + SMALL.single_blocks  # the blocks' own attention, watched
    for block, recorded in enumerate(recorder.probabilities):
        expected = ran[block][:, :, n_text:, :n_text].mean(dim=1)
        assert recorded.shape == (2, grid * grid, n_text)
        torch.testing.assert_close(recorded.detach(), expected, atol=1e-5, rtol=1e-4)
    recorder.remove()
    _forward(components)
    assert len(recorder.probabilities) == SMALL.double_blocks  # removed hooks record nothing more


def test_the_loss_rewards_attention_inside_the_mask_and_reaches_the_double_blocks() -> None:
    components = _components()
    recorder = AttentionGrounding(components[0])
    _forward(components)
    mass = recorder.probabilities[0][0][:, [2, 3]].sum(-1).detach()
    where = (mass >= mass.median()).float()
    kept = list(recorder.probabilities)
    inside = recorder.loss([GroundingTarget(0, [2, 3], where)])
    recorder.probabilities = kept
    outside = recorder.loss([GroundingTarget(0, [2, 3], 1 - where)])
    assert inside is not None and outside is not None
    assert float(inside.detach()) < float(outside.detach())
    assert recorder.probabilities == []  # read once
    assert recorder.loss([GroundingTarget(0, [2], where)]) is None  # nothing recorded since
    outside.backward()
    transformer: Any = components[0]
    assert transformer.transformer_blocks[0].attn.to_q.weight.grad.abs().sum() > 0
    assert transformer.transformer_blocks[0].attn.add_k_proj.weight.grad.abs().sum() > 0
    assert transformer.single_transformer_blocks[0].attn.to_q.weight.grad is None


def test_targets_skip_dropped_captions_and_take_each_named_group() -> None:
    captions = ["a red circle and a blue star", ""]
    objects = [
        [("red", "circle", (0.0, 0.0, 20.0, 20.0)), ("blue", "star", (30.0, 30.0, 60.0, 60.0))],
        [("green", "square", (0.0, 0.0, 20.0, 20.0))],
    ]
    targets = grounding_targets(
        captions, [_offsets(c) for c in captions], objects, 16, 64, torch.device("cpu")
    )
    assert [(t.row, t.tokens) for t in targets] == [(0, [2, 3]), (0, [6, 7])]
    assert targets[0].mask.shape == (256,)
    only_second = grounding_targets(
        captions, [_offsets(c) for c in captions], objects, 16, 64, torch.device("cpu"), rows={1}
    )
    assert only_second == []  # row 1's caption was dropped; row 0 was not asked for


@pytest.mark.parametrize(("kind", "batch"), [("mass", 4), ("share", 8)])
def test_grounding_training_lowers_the_grounding_term(tmp_path: Path, kind: str, batch: int) -> None:
    # share binds only captions naming two groups or more: a batch of 8 holds some.
    cfg = TrainConfig(
        out=str(tmp_path), steps=1, batch=batch, lr=3e-3, warmup=1, grounding_weight=1.0, grounding_kind=kind
    )
    trainer = Trainer(cfg, SMALL)
    for _ in range(3):
        trainer.step = 0
        trainer.train_step()
    first = sum(trainer.grounding_terms) / 3
    for _ in range(25):
        trainer.step = 0  # the same batch: the attention must learn where its objects are
        trainer.train_step()
    assert trainer.grounding_terms[-1] < 0.7 * first
    assert "--grounding-weight 1.0" in training_command(vars(cfg), vars(SMALL))
    assert "--grounding-weight" not in training_command(vars(TrainConfig()), vars(SMALL))


def test_train_command_refuses_a_negative_grounding_weight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.cli import main

    assert main(["train-toyworld", "--out", str(tmp_path), "--grounding-weight", "-1"]) != 0
    assert "grounding_weight" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()


def test_grounding_max_noise_leaves_noisier_samples_to_the_velocity_loss(tmp_path: Path) -> None:
    quiet = TrainConfig(
        out=str(tmp_path), steps=1, batch=4, warmup=1, grounding_weight=1.0, grounding_max_noise=1e-6
    )
    trainer = Trainer(quiet, SMALL)
    trainer.train_step()
    assert trainer.grounding_terms == []  # every sample is noisier than 1e-6: nothing grounded
    line = training_command(vars(quiet), vars(SMALL))
    assert "--grounding-weight 1.0 --grounding-max-noise 1e-06" in line
    assert "--grounding-max-noise" not in training_command(
        vars(TrainConfig(grounding_weight=1.0)), vars(SMALL)
    )


@pytest.mark.parametrize("level", ["0", "1.5"])
def test_train_command_refuses_a_noise_level_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    from scenewright.cli import main

    assert main(["train-toyworld", "--out", str(tmp_path), "--grounding-max-noise", level]) != 0
    assert "grounding_max_noise" in capsys.readouterr().err


NO_BLOCKS = SimpleNamespace(transformer_blocks=[])  # a transformer to hook nothing on


def _two_group_attention(own: float) -> tuple[torch.Tensor, list[GroundingTarget]]:
    """One row, 4 image tokens, 4 text tokens: tokens 0-1 are group A's pixels, 2-3 group B's.
    A's words are text 0-1, B's text 2-3; a pixel gives ``own`` of its object attention to its
    own words. Pixel 3 is background for the mass of both masks (mask 0 there)."""
    probabilities = torch.zeros(1, 4, 4)
    for pixel, mine, theirs in ((0, [0, 1], [2, 3]), (1, [0, 1], [2, 3]), (2, [2, 3], [0, 1])):
        probabilities[0, pixel, mine] = own / 2
        probabilities[0, pixel, theirs] = (1 - own) / 2
    probabilities[0, 3] = 0.25
    a = GroundingTarget(0, [0, 1], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    b = GroundingTarget(0, [2, 3], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    return probabilities, [a, b]


def test_the_share_loss_rewards_each_objects_pixels_attending_to_its_own_words() -> None:
    bound, targets = _two_group_attention(own=0.9)
    swapped, _ = _two_group_attention(own=0.1)
    recorder = AttentionGrounding(NO_BLOCKS, kind="share")
    recorder.probabilities = [bound]
    low = recorder.loss(targets)
    recorder.probabilities = [swapped]
    high = recorder.loss(targets)
    assert low is not None and high is not None
    assert float(low) == pytest.approx(0.01, abs=1e-6)  # (1 - 0.9) ** 2 for both groups
    assert float(high) == pytest.approx(0.81, abs=1e-6)
    # The background (pixel 3) is left alone: any attention there gives the same loss.
    shifted = bound.clone()
    shifted[0, 3] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    recorder.probabilities = [shifted]
    same = recorder.loss(targets)
    assert same is not None and float(same) == pytest.approx(float(low))
    # A caption that names one group binds nothing: there is no other object to confuse it with.
    recorder.probabilities = [bound]
    assert recorder.loss(targets[:1]) is None
    # The mass kind, on the same attention, does see the background.
    mass = AttentionGrounding(NO_BLOCKS, kind="mass")
    mass.probabilities = [bound]
    before = mass.loss(targets)
    mass.probabilities = [shifted]
    after = mass.loss(targets)
    assert before is not None and after is not None and float(after) != pytest.approx(float(before))


def test_grounding_kinds_are_checked_and_recorded(tmp_path: Path) -> None:
    from scenewright.toyworld import command
    from scenewright.toyworld.grounding import GROUNDING_KINDS

    with pytest.raises(ValueError, match="grounding kind"):
        AttentionGrounding(NO_BLOCKS, kind="inside")
    parser = command.argparse.ArgumentParser()
    sub = parser.add_subparsers()
    command.register(sub)
    action = next(a for a in sub.choices["train-toyworld"]._actions if a.dest == "grounding_kind")
    assert tuple(action.choices or ()) == GROUNDING_KINDS
    cfg = TrainConfig(out=str(tmp_path), grounding_weight=1.0, grounding_kind="share")
    assert "--grounding-weight 1.0 --grounding-kind share" in training_command(vars(cfg), vars(SMALL))
    assert "--grounding-kind" not in training_command(vars(TrainConfig(grounding_weight=1.0)), vars(SMALL))
