"""Judge an image against its plan with a detector: per object, what was found, where, in which
colour, and which of the plan's relations hold.

The report has the shape of the toy world's exact judge (name, wanted, found, in_boxes, ok per
object; relations as booleans), so the agent's verify node and refine's ``verifier=detector``
read it the same way, and each object's ``state`` is ordered so that larger is better in every
place, which is what refine compares to keep a round only if no object gets worse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from scenewright.planner.plan import Box, Plan, PlanObject
from scenewright.tools.checks import CountedObject, covers_boxes, judge_relations
from scenewright.tools.detection.color import COLORS, ColorScorer, classify_colors
from scenewright.tools.detection.detectors import THRESHOLDS, Detector, Thresholds, canonical_name
from scenewright.tools.detection.instances import Instance, normalised, select_instances
from scenewright.tools.detection.relations import relation_holds


@dataclass
class ObjectReport(CountedObject):
    """One planned object as the detector saw it; boxes are the plan's normalised coordinates."""

    name: str
    wanted: int
    found: int
    boxes: list[Box]
    scores: list[float]
    colors: list[str]  # per found instance; empty when no colour was asked or no scorer given
    color: str | None  # the colour the plan asks for
    color_ok: bool
    in_boxes: bool
    instances: list[Instance] = field(default_factory=list, repr=False)
    unchecked: str | None = None  # why the detector cannot judge this object (a class it lacks)

    @property
    def ok(self) -> bool:
        return self.count_exact and self.color_ok and self.in_boxes

    @property
    def state(self) -> tuple[float, ...]:
        """Present, count exact, colour right, inside its boxes, closeness of the count."""
        return (
            float(self.present),
            float(self.count_exact),
            float(self.color_ok),
            float(self.in_boxes),
            -float(abs(self.found - self.wanted)),
        )

    def row(self) -> dict[str, Any]:
        """The verify node's row: the toy judge's fields plus boxes, scores and colours."""
        return {
            "name": self.name,
            "wanted": self.wanted,
            "found": self.found,
            "in_boxes": self.in_boxes,
            "ok": None if self.unchecked else self.ok,
            "unchecked": self.unchecked,
            "color": self.color,
            "colors": list(self.colors),
            "boxes": [[round(v, 4) for v in box] for box in self.boxes],
            "scores": [round(s, 4) for s in self.scores],
        }


@dataclass
class PlanReport:
    objects: list[ObjectReport]
    relations: list[bool]

    @property
    def verified(self) -> bool:
        return all(o.ok for o in self.objects) and all(self.relations)

    def rows(self, plan: Plan) -> list[dict[str, Any]]:
        """The verify node's rows, each with the relations its object is the subject of."""
        rows = [o.row() for o in self.objects]
        for row in rows:
            row["relations"] = []
        for rel, holds in zip(plan.relations, self.relations, strict=True):
            judged = not (self.objects[rel.subject].unchecked or self.objects[rel.object].unchecked)
            rows[rel.subject]["relations"].append(
                {"relation": rel.relation, "object": rel.object, "holds": bool(holds) if judged else None}
            )
            if judged and not holds and rows[rel.subject]["ok"]:
                rows[rel.subject]["ok"] = False
        return rows

    def verdict(self) -> bool | None:
        """False when an object or relation fails, None when an object could not be judged."""
        judged = [o for o in self.objects if o.unchecked is None]
        if not all(o.ok for o in judged) or not all(self.relations):
            return False
        return None if len(judged) < len(self.objects) else True


def wanted_color(obj: PlanObject) -> str | None:
    """The first of the object's attributes (or words of its name) that is one of GenEval's colours."""
    words = [w.lower() for a in obj.attributes for w in a.split()] + obj.name.lower().split()
    return next((w for w in words if w in COLORS), None)


class DetectorVerifier:
    """A detector, thresholds and (optionally) a colour scorer, judging images against plans.

    ``colors`` may be a scorer or a function that builds one, called the first time a plan asks
    for a colour, so a CLIP is loaded only when needed.
    """

    def __init__(
        self,
        detector: Detector,
        colors: ColorScorer | Callable[[], ColorScorer] | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.detector = detector
        self._colors = colors
        self.thresholds = thresholds or THRESHOLDS.get(detector.kind, Thresholds(0.3, 0.3, 0.5))
        self.name = f"detector:{detector.name}"

    def color_scorer(self) -> ColorScorer | None:
        if self._colors is not None and not isinstance(self._colors, ColorScorer):
            self._colors = self._colors()
        return self._colors

    def check(self, image: Image.Image, plan: Plan) -> PlanReport:
        rgb = image.convert("RGB")
        names = list(dict.fromkeys(o.name for o in plan.objects))
        found = self.detector.detect(rgb, names) if names else {}
        shared = {n for n in names if sum(o.name == n for o in plan.objects) > 1}
        reports = []
        for obj in plan.objects:
            limit = self.thresholds.counting if obj.count > 1 else self.thresholds.threshold
            kept = select_instances(found.get(obj.name, []), limit, max_overlap=self.thresholds.max_overlap)
            color = wanted_color(obj)
            scorer = self.color_scorer() if color is not None else None
            colors = classify_colors(rgb, kept, obj.name, scorer) if scorer is not None else []
            if obj.name in shared and colors and color is not None:
                # Two planned objects of one kind ("a red apple and a green apple") tell their
                # instances apart by colour.
                kept = [i for i, c in zip(kept, colors, strict=True) if c == color]
                colors = [color] * len(kept)
            color_ok = color is None or scorer is None or colors[: obj.count].count(color) >= obj.count
            boxes = [normalised(i.box, rgb.size) for i in kept]
            centers = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
            in_boxes = covers_boxes(centers, obj.boxes) if obj.boxes else True
            scores = [i.score for i in kept]
            reports.append(
                ObjectReport(
                    obj.name, obj.count, len(kept), boxes, scores, colors, color, color_ok, in_boxes, kept,
                    self.unchecked(obj, color, scorer),
                )
            )  # fmt: skip
        counted = [r.instances[: o.count] for r, o in zip(reports, plan.objects, strict=True)]
        relations = judge_relations(plan.relations, counted, relation_holds)
        return PlanReport(reports, relations)

    def unchecked(self, obj: PlanObject, color: str | None, scorer: ColorScorer | None) -> str | None:
        """Why this detector cannot judge ``obj``: a closed label set without its class, or a
        colour asked with nothing to name colours."""
        known: Callable[[], set[str]] | None = getattr(self.detector, "labels", None)
        if known is not None and canonical_name(obj.name) not in known():
            return f"the detector ({self.detector.kind}) has no class '{obj.name}'"
        if color is not None and scorer is None:
            return f"nothing names colours here, so '{color}' is not checked (pass --clip)"
        return None

    def __call__(
        self, image: Image.Image, plan: Plan, _report: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], bool | None]:
        """The agent's verifier signature: per-object rows and the overall verdict."""
        report = self.check(image, plan)
        return report.rows(plan), report.verdict()
