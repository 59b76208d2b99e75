"""Segmenters for refine's masks: tiny SAMs built from config, the attention fallback, the specs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from scenewright.errors import InvalidInputError, ScenewrightError
from scenewright.tools.segment import (
    AttentionMaskSegmenter,
    PixelBox,
    Segmenter,
    TransformersSam,
    blob_boxes,
    load_segmenter,
    resolve_segmenter,
    sam_kind,
    tokens_touching,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_sam() -> Any:
    """A SAM with 64-pixel inputs and 32-wide layers, random weights: about 80k parameters."""
    from transformers import SamConfig, SamModel

    config = SamConfig(
        vision_config={
            "hidden_size": 32, "output_channels": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": 64, "patch_size": 8, "window_size": 4, "global_attn_indexes": [1],
            "num_pos_feats": 16, "mlp_dim": 64,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": 64, "patch_size": 8, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )  # fmt: skip
    torch.manual_seed(0)
    return SamModel(config).eval()


def tiny_sam2() -> Any:
    """A SAM 2 (Hiera backbone) with 64-pixel inputs, random weights."""
    from transformers import Sam2Config, Sam2Model

    backbone = {
        "model_type": "sam2_hiera_det_model", "hidden_size": 8, "image_size": [64, 64],
        "blocks_per_stage": [1, 2, 2, 1], "embed_dim_per_stage": [8, 16, 32, 64],
        "num_attention_heads_per_stage": [1, 1, 1, 1], "window_size_per_stage": [4, 4, 4, 2],
        "global_attention_blocks": [4], "window_positional_embedding_background_size": [2, 2],
    }  # fmt: skip
    config = Sam2Config(
        vision_config={
            "backbone_config": backbone, "backbone_channel_list": [64, 32, 16, 8],
            "backbone_feature_sizes": [[16, 16], [8, 8], [4, 4]], "fpn_hidden_size": 32,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": 64, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )  # fmt: skip
    torch.manual_seed(0)
    return Sam2Model(config).eval()


def noise_image(height: int, width: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


# ------------------------------------------------------------------------------ transformers
def test_transformers_sam_gives_a_boolean_mask_of_the_image_size() -> None:
    sam = TransformersSam(tiny_sam(), device="cpu")
    assert isinstance(sam, Segmenter) and sam.name == "transformers:sam"
    image = noise_image(64, 64)
    mask = sam.segment(image, [(8.0, 8.0, 40.0, 48.0)])
    assert mask.shape == (64, 64) and mask.dtype == np.bool_
    both = sam.segment(image, [(8.0, 8.0, 40.0, 48.0), (30.0, 0.0, 64.0, 20.0)])
    assert (both | mask).sum() == both.sum()  # the union holds each box's mask
    assert not sam.segment(image, []).any()
    assert not sam.segment(image, [(70.0, 70.0, 90.0, 90.0)]).any()  # off the image: no prompt
    assert sam.segment(noise_image(48, 80), [(5.0, 5.0, 60.0, 40.0)]).shape == (48, 80)


def test_best_mask_per_box_is_the_one_with_the_highest_iou() -> None:
    from scenewright.tools.segment import _best_masks

    masks = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    masks[0, 1, 0, 0] = masks[0, 2, 3, 3] = masks[1, 0, 1, 1] = masks[1, 2, 2, 2] = True
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.2, 0.1, 0.3]])
    union = _best_masks(masks, scores)
    assert {tuple(p) for p in np.argwhere(union)} == {(0, 0), (2, 2)}


def test_transformers_sam_round_trips_through_a_folder(tmp_path: Path) -> None:
    model = tiny_sam()
    sam = TransformersSam(model, device="cpu")
    model.save_pretrained(tmp_path / "sam")
    sam.processor.save_pretrained(tmp_path / "sam")
    assert resolve_segmenter(str(tmp_path / "sam")).variant == "sam"
    loaded = load_segmenter(str(tmp_path / "sam"), device="cpu")
    assert isinstance(loaded, TransformersSam) and loaded.processor is not None
    image, box = noise_image(64, 64, seed=1), [(10.0, 12.0, 50.0, 44.0)]
    assert np.array_equal(loaded.segment(image, box), sam.segment(image, box))


def test_sam2_works_without_torchvision_through_its_own_preprocessing(tmp_path: Path) -> None:
    tiny_sam2().save_pretrained(tmp_path / "sam2")
    loaded = load_segmenter(str(tmp_path / "sam2"), device="cpu")
    assert isinstance(loaded, TransformersSam) and loaded.kind == "sam2"
    mask = loaded.segment(noise_image(48, 80), [(5.0, 5.0, 60.0, 40.0)])
    assert mask.shape == (48, 80) and mask.dtype == np.bool_


# --------------------------------------------------------------------------------- fallback
def test_attention_fallback_keeps_strong_tokens_near_the_boxes() -> None:
    attention = np.array(
        [
            [0.9, 0.5, 0.0, 0.0],
            [0.3, 0.2, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.8],
        ]
    )
    fallback = AttentionMaskSegmenter(torch.tensor(attention))
    image = Image.new("RGB", (32, 32))
    # A box over the top-left 2x2 tokens: 0.9 and 0.5 pass (0.5/0.9 >= 0.35), 0.3 and 0.2 do not,
    # and the strong token at the bottom right is far from the box.
    mask = fallback.segment(image, [(0.0, 0.0, 16.0, 16.0)])
    expected = np.zeros((32, 32), dtype=bool)
    expected[0:8, 0:16] = True
    assert np.array_equal(mask, expected)
    # A second prompt (say a stray blob's box) brings its own strong tokens in.
    both = fallback.token_mask((32, 32), [(0.0, 0.0, 16.0, 16.0), (24.0, 24.0, 32.0, 32.0)])
    assert {tuple(p) for p in np.argwhere(both)} == {(0, 0), (0, 1), (3, 3)}
    assert not AttentionMaskSegmenter(np.zeros((4, 4))).segment(image, [(0.0, 0.0, 32.0, 32.0)]).any()


def test_token_helpers_round_outwards_and_box_each_blob() -> None:
    pixels = np.zeros((32, 32), dtype=bool)
    pixels[7, 9] = True  # one pixel: the token holding it (row 0, col 1) is in
    pixels[20:30, 20:22] = True
    tokens = tokens_touching(pixels, (4, 4))
    assert {tuple(p) for p in np.argwhere(tokens.numpy())} == {(0, 1), (2, 2), (3, 2)}
    assert tokens_touching(np.ones((30, 30), dtype=bool), (4, 4)).all()  # uneven cells
    blobs = np.zeros((4, 4), dtype=bool)
    blobs[0, 0] = blobs[2:4, 3] = True
    assert sorted(blob_boxes(blobs, (32, 64))) == [(0.0, 0.0, 8.0, 16.0), (24.0, 32.0, 32.0, 64.0)]


# ------------------------------------------------------------------------------------ specs
def test_load_segmenter_refuses_what_it_cannot_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_segmenter(None) is None and load_segmenter("") is None
    with pytest.raises(InvalidInputError, match="does not exist") as missing:
        load_segmenter(str(tmp_path / "nowhere" / "sam"))
    assert missing.value.field == "sam"
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_segmenter(str(tmp_path / "sam_vit_b.pth"))

    monkeypatch.setitem(sys.modules, "segment_anything", None)  # as if not installed
    checkpoint = tmp_path / "sam_vit_b_01ec64.pth"
    checkpoint.write_bytes(b"not really weights")
    for spec in (str(checkpoint), f"vit_l:{checkpoint}"):
        with pytest.raises(InvalidInputError, match=r"scenewright\[sam\]") as extra:
            load_segmenter(spec)
        assert extra.value.field == "sam"
    unnamed = tmp_path / "weights.pth"
    unnamed.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="vit_b:"):
        load_segmenter(str(unnamed))
    assert sam_kind("sam_vit_h_4b8939.pth") == "vit_h" and sam_kind("weights.pth") is None

    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match=r"no config\.json"):
        load_segmenter(str(tmp_path / "empty"))
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(InvalidInputError, match="'clip' model"):
        load_segmenter(str(tmp_path / "clip"))
    assert resolve_segmenter("facebook/sam-vit-base").kind == "transformers"  # a hub id: not loaded


# ------------------------------------------------------------------------------------ refine
class FixedMask:
    """A segmenter that answers every prompt with the same top-left 5x5 pixels."""

    name = "fixed"

    def __init__(self) -> None:
        self.prompts: list[list[PixelBox]] = []

    def segment(self, image: Image.Image, boxes: Sequence[PixelBox]) -> np.ndarray:
        self.prompts.append(list(boxes))
        mask = np.zeros((image.height, image.width), dtype=bool)
        mask[:5, :5] = True
        return mask


def test_refine_masks_with_the_segmenter_and_changes_nothing_outside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scenewright.backends.tiny import TinyBackend, TinyConfig
    from scenewright.executor import refine
    from scenewright.executor.sampler import SamplingSettings
    from scenewright.executor.strategies import run_strategy
    from scenewright.planner.plan import Plan, PlanObject

    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1), seed=3)
    plan = Plan(
        prompt="a red circle",
        objects=[PlanObject(name="circle", attributes=["red"], boxes=[(0.5, 0.5, 1.0, 1.0)])],
    )
    real_check = refine.check_objects
    calls = []

    def failing_then_fixed(maps: torch.Tensor, plan: Plan, attention: torch.Tensor | None = None) -> Any:
        """The first image fails its check, the repaired one passes: the round is kept."""
        checks, strays = real_check(maps, plan, attention)
        calls.append(maps)
        for check in checks:
            check.boxes_hit, check.stray_blobs = (0, 0) if len(calls) == 1 else (check.boxes, 0)
        return checks, {i: torch.zeros_like(s) for i, s in strays.items()}

    monkeypatch.setattr(refine, "check_objects", failing_then_fixed)
    settings = SamplingSettings(32, 32, steps=3, guidance=3.0, seed=5)
    given = run_strategy("vanilla", backend, plan, settings).image
    segmenter = FixedMask()
    result = refine.render_refine(
        backend, plan, settings, base="vanilla", image=given, segmenter=segmenter, verifier="attention"
    )

    assert segmenter.prompts == [[(16.0, 16.0, 32.0, 32.0)]]  # the planned box, in pixels
    report = result.report["refine"]
    assert report["segmenter"] == "fixed"
    assert report["rounds"][1]["masks"] == [
        {"object": 0, "name": "circle", "segmenter": "fixed", "tokens": 5}
    ]
    mask = result.artifacts["refine_mask"]
    # Tokens are 8x8 pixels: the 5x5 corner (grown a pixel) is token (0, 0), the box is the
    # bottom-right 2x2 tokens; refine grows their union by one token before inpainting.
    tokens = np.zeros((4, 4), dtype=bool)
    tokens[0, 0] = True
    tokens[2:, 2:] = True
    grown = torch.nn.functional.max_pool2d(torch.tensor(tokens)[None, None].float(), 3, 1, 1)[0, 0] > 0
    assert np.array_equal(mask, np.kron(grown.numpy(), np.ones((8, 8), dtype=bool)))
    assert (np.asarray(given)[~mask] == np.asarray(result.image)[~mask]).all()
    assert result.strategy == "refine:vanilla"


# ------------------------------------------------------------------------------------- agent
def test_the_agent_hands_its_segmenter_to_strategies_that_take_one(tmp_path: Path) -> None:
    from scenewright.agent.core import Agent
    from scenewright.agent.nodes import Toolbox, _run_strategy
    from scenewright.executor.sampler import SamplingSettings
    from scenewright.planner.plan import Plan

    seen: dict[str, Any] = {}

    def takes_one(
        backend: Any, plan: Any, settings: Any, segmenter: Any = None, verifier: str = "attention", **_: Any
    ) -> Any:
        seen["segmenter"], seen["verifier"] = segmenter, verifier
        return "rendered"

    segmenter = FixedMask()
    tools = Toolbox(
        planner=lambda *_: None,  # type: ignore[arg-type,return-value]
        backend=lambda: None,  # type: ignore[arg-type,return-value]
        verifier=lambda *_: ([], None),
        out_dir=tmp_path,
        strategies={"refine": takes_one},
        segmenter=lambda: segmenter,
    )
    plan = Plan(prompt="a red circle")
    _run_strategy(tools, "refine", None, plan, SamplingSettings(32, 32, steps=1, guidance=1.0))  # type: ignore[arg-type]
    assert seen["segmenter"] is segmenter
    assert seen["verifier"] == "attention"  # not the embedded model: no exact detector to use
    from scenewright.backends.tiny import TinyBackend, TinyConfig

    tiny = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1), seed=0)
    _run_strategy(tools, "refine", tiny, plan, SamplingSettings(32, 32, steps=1, guidance=1.0))
    assert seen["verifier"] == "evaluator"  # the toy world: refine keeps rounds by the exact judge

    with pytest.raises(InvalidInputError, match=r"sam: .* does not exist"):
        Agent(sam=str(tmp_path / "missing.pth"), out_dir=tmp_path)
    folder = tmp_path / "sam"
    tiny_sam().save_pretrained(folder)
    agent = Agent(sam=str(folder), out_dir=tmp_path, device="cpu")
    loaded = agent.load_segmenter()
    assert isinstance(loaded, TransformersSam) and agent.load_segmenter() is loaded  # loaded once
    assert Agent(sam=segmenter, out_dir=tmp_path).load_segmenter() is segmenter


def test_generate_refuses_a_missing_sam_checkpoint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright import cli

    args = cli.build_parser().parse_args(
        [
            "generate",
            "a red circle",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--sam",
            str(tmp_path / "x.pth"),
        ]
    )
    with pytest.raises(ScenewrightError, match=r"sam: .*x\.pth does not exist"):
        args.handler(args)
    assert not (tmp_path / "o" / "image.png").exists()


def test_segment_anything_sam_takes_each_box_s_best_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper's side of segment_anything's API, against a stand-in package (torchvision cannot
    be imported beside this machine's torch, so the real one cannot run here)."""
    import types

    from scenewright.tools.segment import SegmentAnythingSam

    class Predictor:
        def __init__(self, model: Any) -> None:
            self.model, self.image = model, None

        def set_image(self, image: np.ndarray) -> None:
            self.image = image

        def predict(self, box: np.ndarray, multimask_output: bool) -> tuple[np.ndarray, np.ndarray, None]:
            assert self.image is not None and multimask_output
            masks = np.zeros((3, *self.image.shape[:2]), dtype=bool)
            x0, y0, x1, y1 = box.astype(int)
            masks[1, y0:y1, x0:x1] = True  # the right one, by score
            masks[0] = True
            return masks, np.array([0.1, 0.9, 0.3]), None

    built: dict[str, Any] = {}

    def build_vit_b(checkpoint: str) -> Any:
        built["checkpoint"] = checkpoint
        return torch.nn.Linear(1, 1)

    fake = types.ModuleType("segment_anything")
    fake.sam_model_registry = {"vit_b": build_vit_b}  # type: ignore[attr-defined]
    fake.SamPredictor = Predictor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "segment_anything", fake)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    checkpoint = tmp_path / "sam_vit_b_01ec64.pth"
    checkpoint.write_bytes(b"")
    sam = load_segmenter(str(checkpoint), device="cpu")
    assert isinstance(sam, SegmentAnythingSam) and built["checkpoint"] == str(checkpoint)
    assert sam.name.startswith("segment-anything:vit_b:")
    mask = sam.segment(noise_image(20, 30), [(2.0, 3.0, 6.0, 8.0), (20.0, 10.0, 40.0, 40.0)])
    expected = np.zeros((20, 30), dtype=bool)
    expected[3:8, 2:6] = expected[10:20, 20:30] = True
    assert np.array_equal(mask, expected)
