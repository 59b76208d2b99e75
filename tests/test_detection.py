"""The detector verifier: instance selection, box conversion, GenEval's relative positions,
colour by crop, per-object reports, and tiny OWLv2 / Grounding DINO / Mask2Former / CLIP
models built from config (random weights: plumbing, shapes and thresholds, not accuracy)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

import detection_builders as builders
from scenewright.errors import InvalidInputError
from scenewright.planner.plan import Plan, PlanObject, PlanRelation
from scenewright.tools.detection.color import COLORS, ClipColorScorer, classify_colors, crop_instance
from scenewright.tools.detection.detectors import (
    THRESHOLDS,
    Thresholds,
    build_detector,
    canonical_name,
    load_detector,
    name_token_spans,
    resolve_detector,
)
from scenewright.tools.detection.instances import (
    Instance,
    center_boxes_to_pixels,
    mask_box,
    normalised,
    select_instances,
)
from scenewright.tools.detection.relations import relation_holds, relative_position
from scenewright.tools.detection.verify import DetectorVerifier, wanted_color

RGB = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}


class MeanColor:
    """A stub CLIP: the palette colour nearest each crop's mean pixel gets the top score."""

    def scores(self, crops: Sequence[Image.Image], name: str) -> np.ndarray:
        out = np.zeros((len(crops), len(COLORS)))
        for row, crop in enumerate(crops):
            mean = np.asarray(crop.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
            best = min(RGB, key=lambda c: float(np.linalg.norm(mean - np.array(RGB[c]))))
            out[row, COLORS.index(best)] = 1.0
        return out


class FakeDetector:
    """Synthetic detections with known answers."""

    name = "fake"
    kind = "fake"

    def __init__(self, found: dict[str, list[Instance]]) -> None:
        self.found = found
        self.asked: list[list[str]] = []

    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]:
        self.asked.append(list(names))
        return {n: self.found.get(n, []) for n in names}


def painted(boxes: dict[tuple[int, int, int, int], str], size: tuple[int, int] = (100, 50)) -> Image.Image:
    image = Image.new("RGB", size, (0, 0, 0))
    for box, color in boxes.items():
        image.paste(RGB[color], box)
    return image


# ------------------------------------------------------------------------------- instances
def test_select_instances_thresholds_caps_and_overlap() -> None:
    a = Instance((0, 0, 10, 10), 0.9)
    a_dup = Instance((1, 1, 10, 10), 0.8)
    b = Instance((50, 0, 60, 10), 0.5)
    weak = Instance((80, 0, 90, 10), 0.3)
    assert select_instances([weak, b, a_dup, a], 0.3) == [a, a_dup, b]  # above, not at, the threshold
    assert select_instances([weak, b, a_dup, a], 0.3, max_objects=2) == [a, a_dup]
    assert select_instances([weak, b, a_dup, a], 0.3, max_overlap=0.5) == [a, b]


def test_owlv2_boxes_are_relative_to_the_padded_square() -> None:
    # A 40x20 image is padded to 40x40: cy = 0.25 of the square is the image's middle row.
    (box,) = center_boxes_to_pixels(np.array([[0.5, 0.25, 0.5, 0.25]]), (40, 40), (40, 20))
    assert box == pytest.approx((10.0, 5.0, 30.0, 15.0))
    assert normalised(box, (40, 20)) == pytest.approx((0.25, 0.25, 0.75, 0.75))
    (clipped,) = center_boxes_to_pixels(np.array([[0.5, 0.5, 0.5, 0.5]]), (40, 40), (40, 20))
    assert clipped == pytest.approx((10.0, 10.0, 30.0, 20.0))  # below the image: clipped to it


def test_mask_box_is_end_exclusive() -> None:
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == (3.0, 2.0, 9.0, 5.0)
    assert mask_box(np.zeros((4, 4), dtype=bool)) is None


# ------------------------------------------------------------------------------- relations
def test_relative_position_follows_geneval() -> None:
    left, right = (0, 40, 10, 50), (80, 40, 90, 50)
    assert relative_position(left, right) == {"left of"}
    assert relative_position(right, left) == {"right of"}
    assert relative_position((40, 0, 50, 10), (40, 80, 50, 90)) == {"above"}
    assert relative_position((0, 0, 10, 10), (80, 80, 90, 90)) == {"left of", "above"}  # diagonal
    # Overlapping boxes whose centres differ by less than a tenth of their sizes: no direction.
    assert relative_position((0, 0, 100, 100), (5, 0, 105, 100)) == set()


def test_relation_holds_for_plan_words() -> None:
    a, b = [Instance((0, 40, 10, 50), 1)], [Instance((80, 40, 90, 50), 1)]
    top, bottom = [Instance((40, 0, 50, 10), 1)], [Instance((40, 80, 50, 90), 1)]
    assert relation_holds("left of", a, b) and not relation_holds("left of", b, a)
    assert relation_holds("next to", a, b) and relation_holds("next to", b, a)
    assert relation_holds("on", top, bottom) and relation_holds("under", bottom, top)
    assert not relation_holds("next to", top, bottom)
    assert not relation_holds("left of", a, [])  # nothing to be left of
    assert relation_holds("between", a, b)  # not judged from boxes
    assert not relation_holds("left of", [*a, *b], b)  # every subject instance must hold


# ---------------------------------------------------------------------------------- colour
def test_colour_is_the_argmax_on_each_crop_and_masks_paint_grey() -> None:
    image = painted({(0, 0, 20, 20): "red", (50, 0, 70, 20): "blue"})
    found = [Instance((50, 0, 70, 20), 0.9), Instance((0, 0, 20, 20), 0.8)]
    assert classify_colors(image, found, "cube", MeanColor()) == ["blue", "red"]
    mask = np.zeros((50, 100), dtype=bool)
    mask[0:5, 0:5] = True
    crop = np.asarray(crop_instance(image, Instance((0, 0, 20, 20), 1.0, mask)))
    assert crop.shape == (20, 20, 3)
    assert tuple(crop[0, 0]) == RGB["red"] and tuple(crop[10, 10]) == (153, 153, 153)


def test_clip_colour_scorer_gives_one_score_per_colour() -> None:
    model, processor = builders.clip()
    scorer = ClipColorScorer(model, processor, device="cpu")
    image = painted({(0, 0, 20, 20): "red"})
    scores = scorer.scores([image, image.crop((0, 0, 5, 5)), image.crop((0, 0, 1, 1))], "cat")
    assert scores.shape == (3, len(COLORS)) and np.isfinite(scores).all()
    assert np.abs(scores).max() <= 100.0 + 1e-3  # cosine similarities times CLIP's scale of 100
    assert set(scorer._classifiers) == {"cat"}


# ----------------------------------------------------------------------------- plan checks
def _plan() -> Plan:
    return Plan(
        prompt="two red apples left of a blue cup",
        objects=[
            PlanObject(
                name="apple", count=2, attributes=["red"], boxes=[(0, 0, 0.2, 0.4), (0, 0.5, 0.2, 0.9)]
            ),
            PlanObject(name="cup", attributes=["blue"], boxes=[(0.6, 0.2, 0.9, 0.8)]),
        ],
        relations=[PlanRelation(subject=0, relation="left of", object=1)],
    )


def test_detector_verifier_reports_counts_boxes_colours_and_relations() -> None:
    image = painted({(2, 2, 18, 18): "red", (2, 28, 18, 44): "red", (65, 15, 85, 35): "blue"})
    apples = [Instance((2, 2, 18, 18), 0.95), Instance((2, 28, 18, 44), 0.92), Instance((2, 2, 17, 17), 0.5)]
    cups = [Instance((65, 15, 85, 35), 0.4)]
    detector = FakeDetector({"apple": apples, "cup": cups})
    verifier = DetectorVerifier(detector, MeanColor(), Thresholds(0.3, 0.9, 1.0))
    report = verifier.check(image, _plan())
    apple, cup = report.objects
    # Counting threshold (0.9) for the object wanted twice drops the 0.5 duplicate.
    assert (apple.found, apple.wanted, apple.colors, apple.in_boxes) == (2, 2, ["red", "red"], True)
    assert apple.boxes[0] == pytest.approx((0.02, 0.04, 0.18, 0.36))
    assert (cup.found, cup.colors, cup.color_ok, cup.in_boxes) == (1, ["blue"], True, True)
    assert report.relations == [True] and report.verified
    assert detector.asked == [["apple", "cup"]]
    rows, verdict = verifier(image, _plan(), {})
    assert verdict is True and rows[0]["found"] == 2 and rows[1]["colors"] == ["blue"]
    assert set(rows[0]) >= {"name", "wanted", "found", "in_boxes", "ok", "boxes", "colors"}


def test_detector_verifier_failures_lower_the_state() -> None:
    image = painted({(65, 15, 85, 35): "red"})
    cups = [Instance((65, 15, 85, 35), 0.4)]
    verifier = DetectorVerifier(FakeDetector({"cup": cups}), MeanColor(), Thresholds(0.3, 0.9, 1.0))
    report = verifier.check(image, _plan())
    apple, cup = report.objects
    assert (apple.found, apple.ok, apple.state) == (0, False, (0.0, 0.0, 0.0, 0.0, -2.0))
    assert cup.colors == ["red"] and not cup.color_ok and cup.state == (1.0, 1.0, 0.0, 1.0, 0.0)
    assert report.relations == [False] and not report.verified


def test_same_name_objects_are_told_apart_by_colour() -> None:
    image = painted({(2, 2, 18, 18): "red", (60, 2, 76, 18): "green"})
    apples = [Instance((2, 2, 18, 18), 0.9), Instance((60, 2, 76, 18), 0.8)]
    plan = Plan(
        prompt="a red apple and a green apple",
        objects=[
            PlanObject(name="apple", attributes=["red"]),
            PlanObject(name="apple", attributes=["green"]),
        ],
    )
    report = DetectorVerifier(FakeDetector({"apple": apples}), MeanColor()).check(image, plan)
    assert [(o.found, o.colors) for o in report.objects] == [(1, ["red"]), (1, ["green"])]
    assert wanted_color(PlanObject(name="red apple")) == "red"


# -------------------------------------------------------------------------- tiny detectors
def _all_boxes_inside(found: dict[str, list[Instance]], size: tuple[int, int]) -> bool:
    width, height = size
    return all(0 <= i.box[0] <= i.box[2] <= width and 0 <= i.box[1] <= i.box[3] <= height
               for items in found.values() for i in items)  # fmt: skip


def test_tiny_owlv2_gives_each_box_to_its_best_name(tmp_path) -> None:
    model, image_processor, tokenizer = builders.owlv2()
    detector = build_detector(model, image_processor, tokenizer, "cpu")
    image = painted({(2, 2, 18, 18): "red"}, (40, 20))
    found = detector.detect(image, ["cat", "dog"])
    alone = {name: detector.detect(image, [name])[name] for name in ("cat", "dog")}
    patches = (32 // 8) ** 2
    # Asked alone, a name scores every box; asked together, each box goes to one name only,
    # the one it scores higher on (transformers' OWL labelling, which the thresholds assume).
    assert detector.kind == "owlv2" and all(len(v) == patches for v in alone.values())
    assert len(found["cat"]) + len(found["dog"]) == patches
    other = {"cat": "dog", "dog": "cat"}
    for name, items in found.items():
        rival = {i.box: i.score for i in alone[other[name]]}
        assert all(i.score >= rival[i.box] for i in items)
    scores = [i.score for i in alone["cat"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert _all_boxes_inside(found, image.size)
    # The same checkpoint saved to a folder is recognised by its config and loads offline.
    model.save_pretrained(tmp_path)
    image_processor.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert resolve_detector(str(tmp_path)).kind == "owlv2"
    loaded = load_detector(str(tmp_path), "cpu")
    again = loaded.detect(image, ["cat"])
    np.testing.assert_allclose([i.box for i in again["cat"]], [i.box for i in alone["cat"]], atol=1e-4)


def test_tiny_grounding_dino_scores_names_by_their_tokens() -> None:
    model, image_processor, tokenizer = builders.grounding_dino()
    detector = build_detector(model, image_processor, tokenizer, "cpu")
    image = painted({(2, 2, 18, 18): "red"}, (40, 20))
    found = detector.detect(image, ["cat", "computer mouse"])
    assert detector.kind == "grounding-dino" and {k: len(v) for k, v in found.items()} == {
        "cat": 10,
        "computer mouse": 10,
    }
    assert _all_boxes_inside(found, image.size)
    caption = "cat . computer mouse ."
    offsets = [(0, 0), (0, 3), (4, 5), (6, 14), (15, 20), (21, 22), (0, 0)]
    assert name_token_spans(offsets, caption, ["cat", "computer mouse"]) == [[1], [3, 4]]


def test_tiny_mask2former_gives_masked_instances_matched_by_name() -> None:
    model, image_processor = builders.mask2former(("cat", "mouse", "tv"))
    model.class_predictor.bias.data[:] = -20.0
    model.class_predictor.bias.data[1] = 20.0  # every query says "mouse"
    detector = build_detector(model, image_processor)
    image = painted({(2, 2, 18, 18): "red"}, (40, 20))
    found = detector.detect(image, ["computer mouse", "cat"])
    assert found["cat"] == [] and found["computer mouse"]
    for instance in found["computer mouse"]:
        assert instance.mask is not None and instance.mask.shape == (20, 40)
        assert instance.box == mask_box(instance.mask)
    assert canonical_name("Computer_Mouse") == "mouse" and canonical_name("TV-monitor") == "tv"


def test_thresholds_are_the_documented_ones() -> None:
    # GenEval (Mask2Former), SLD's OWLv2 evaluation, LMD's OWL-ViT one, Grounding DINO's README.
    assert THRESHOLDS["mask2former"] == Thresholds(0.3, 0.9, 1.0)
    assert THRESHOLDS["owlv2"] == Thresholds(0.2, 0.2, 0.15)
    assert THRESHOLDS["owlvit"] == Thresholds(0.05, 0.05, 0.5)
    assert THRESHOLDS["grounding-dino"].threshold == THRESHOLDS["mm-grounding-dino"].threshold == 0.35


def test_detector_specs_are_checked_before_loading(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match=r"^detector: is empty"):
        resolve_detector(" ")
    with pytest.raises(InvalidInputError, match=r"has no config\.json"):
        resolve_detector(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(InvalidInputError, match="'clip' model, not a detector"):
        resolve_detector(str(tmp_path))
    with pytest.raises(InvalidInputError, match="does not exist"):
        resolve_detector(str(tmp_path / "missing"))
    assert resolve_detector("google/owlv2-base-patch16-ensemble").kind is None  # checked when loaded
