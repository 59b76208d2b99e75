"""Score a GenEval folder by GenEval's rules, with a detector and CLIP from ``transformers``.

Per image: each class the metadata names is detected; instances above the confidence threshold
(GenEval's stricter one for counting prompts), best first, at most 16, count. Each ``include``
clause needs ``count`` of them; a colour clause needs that many of the most confident ones to be
named that colour by CLIP on their crops; a position clause needs each of them to lie in that
direction from every instance matched by the clause it refers to (box centres, GenEval's
relative position). An ``exclude`` clause fails when ``count`` or more are found. A tag's score
is the share of its images that pass; the overall score is the mean over tags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from scenewright.tools.detection.color import COLORS
from scenewright.tools.detection.detectors import Detector, Thresholds
from scenewright.tools.detection.instances import MAX_OBJECTS, Instance, select_instances
from scenewright.tools.detection.relations import relative_position

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# GenEval's table for FLUX.1-dev as published (Janus-Pro's comparison, which the field cites).
PUBLISHED = {
    "FLUX.1-dev": {
        "single_object": 0.98, "two_object": 0.81, "counting": 0.74, "colors": 0.79,
        "position": 0.22, "color_attr": 0.45, "overall": 0.66,
    }
}  # fmt: skip
ColorFn = Callable[[Image.Image, Sequence[Instance], str], list[str]]


def judge(
    metadata: dict[str, Any], detected: dict[str, list[Instance]], colors: ColorFn, image: Image.Image
) -> tuple[bool, list[str]]:
    """GenEval's verdict on one image and its reasons (worded as GenEval words them); ``detected``
    holds the instances that count."""
    correct, reasons = True, []
    matched: list[list[Instance] | None] = []
    for clause in metadata.get("include", []):
        name, count = clause["class"], int(clause["count"])
        found = detected.get(name, [])[:count]
        ok = len(found) >= count
        if not ok:
            reasons.append(f"expected {name}>={count}, found {len(found)}")
        else:
            if "color" in clause:
                named = colors(image, found, name)
                if named.count(clause["color"]) < count:
                    ok = False
                    wanted = clause["color"]
                    tally = ", ".join(f"{named.count(c)} {c}" for c in COLORS if c in named)
                    reasons.append(
                        f"expected {wanted} {name}>={count}, found {named.count(wanted)} {wanted}; and {tally}"
                    )
            if "position" in clause and ok:
                relation, target = clause["position"]
                others = matched[target]
                if others is None:
                    ok = False
                    reasons.append(f"no target for {name} to be {relation}")
                else:
                    for mine in found:
                        bad = next(
                            (o for o in others if relation not in relative_position(mine.box, o.box)), None
                        )
                        if bad is not None:
                            ok = False
                            seen = " and ".join(sorted(relative_position(mine.box, bad.box)))
                            reasons.append(f"expected {name} {relation} target, found {seen} target")
                            break
        correct = correct and ok
        matched.append(found if ok else None)
    for clause in metadata.get("exclude", []):
        name, count = clause["class"], int(clause["count"])
        if len(detected.get(name, [])) >= count:
            correct = False
            reasons.append(f"expected {name}<{count}, found {len(detected[name])}")
    return correct, reasons


def classes(metadata: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(c["class"] for key in ("include", "exclude") for c in metadata.get(key, [])))


def detect_counted(
    image: Image.Image, metadata: dict[str, Any], detector: Detector, thresholds: Thresholds
) -> dict[str, list[Instance]]:
    """The instances that count for this prompt, per class."""
    limit = thresholds.counting if metadata.get("tag") == "counting" else thresholds.threshold
    found = detector.detect(image, classes(metadata))
    kept = {n: select_instances(c, limit, MAX_OBJECTS, thresholds.max_overlap) for n, c in found.items()}
    return {n: items for n, items in kept.items() if items}


def images(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every sample of a GenEval folder with its prompt's metadata, as GenEval's reader finds them."""
    found = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name.isdigit()):
        meta = folder / "metadata.jsonl"
        samples = folder / "samples"
        if not meta.is_file() or not samples.is_dir():
            continue
        metadata = json.loads(meta.read_text(encoding="utf-8"))
        for image in sorted(samples.iterdir()):
            if image.is_file() and re.fullmatch(r"\d+\.png", image.name):
                found.append((image, metadata))
    return found


@dataclass
class Scored:
    path: str
    tag: str
    prompt: str
    correct: bool
    reason: str
    details: dict[str, list[list[float]]]
    metadata: str = ""  # the prompt's metadata line as JSON text, as GenEval writes it

    def row(self) -> dict[str, Any]:
        """A line of GenEval's results.jsonl, with every column its ``summary_scores.py`` reads
        (``tag`` and ``correct`` per task, ``metadata`` to group the images of one prompt)."""
        return {"filename": self.path, "tag": self.tag, "prompt": self.prompt, "correct": self.correct,
                "reason": self.reason, "metadata": self.metadata, "details": json.dumps(self.details)}  # fmt: skip


def score_image(
    path: Path, metadata: dict[str, Any], detector: Detector, thresholds: Thresholds, colors: ColorFn
) -> Scored:
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    detected = detect_counted(image, metadata, detector, thresholds)
    correct, reasons = judge(metadata, detected, colors, image)
    details = {n: [[*i.box, i.score] for i in items] for n, items in detected.items()}
    return Scored(str(path), metadata["tag"], metadata["prompt"], correct, "\n".join(reasons), details,
                  json.dumps(metadata))  # fmt: skip


def tag_scores(results: Sequence[Scored]) -> dict[str, float]:
    """Per tag the share of correct images (tags in GenEval's order, then any others), and overall."""
    by_tag: dict[str, list[bool]] = {}
    for r in results:
        by_tag.setdefault(r.tag, []).append(r.correct)
    order = [t for t in TAGS if t in by_tag] + [t for t in by_tag if t not in TAGS]
    scores = {t: sum(by_tag[t]) / len(by_tag[t]) for t in order}
    if scores:
        scores["overall"] = sum(scores.values()) / len(scores)
    return scores


def table(scores: dict[str, float], label: str = "this run") -> str:
    """GenEval's per-tag table in markdown, with the published FLUX.1-dev row beside it."""
    columns = [*TAGS, "overall"]
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines.append(
        f"| {label} | " + " | ".join(f"{scores[c]:.2f}" if c in scores else "-" for c in columns) + " |"
    )
    for name, row in PUBLISHED.items():
        lines.append(f"| {name} (published) | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    return "\n".join(lines)
