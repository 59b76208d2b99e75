"""The toy world's exact evaluator behind the detector interface, for scoring GenEval-style
folders rendered on the embedded models offline (``eval geneval-score DIR --detector exact``).

Every coloured shape the evaluator finds is an instance of its shape's name (and of the plural),
with confidence 1.0; its colour is the evaluator's, not CLIP's. A class that is no toy-world
shape has no instances, and :meth:`ExactDetector.labels` lists the classes it knows.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from scenewright.tools.detection.detectors import Thresholds
from scenewright.tools.detection.instances import Instance

NAME = "exact"


class ExactDetector:
    """Scored instances per class name from the toy world's exact evaluator."""

    name = "exact:toyworld"
    kind = NAME

    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]:
        found = self._found(image)
        return {name: [i for i, shape, _ in found if shape == _shape(name)] for name in names}

    def colors(self, image: Image.Image, instances: Sequence[Instance], _name: str) -> list[str]:
        """The evaluator's colour of each instance (matched by box)."""
        by_box = {i.box: color for i, _, color in self._found(image)}
        return [by_box.get(i.box, "") for i in instances]

    def labels(self) -> set[str]:
        from scenewright.toyworld.vocab import SHAPES

        return set(SHAPES)

    @staticmethod
    def _found(image: Image.Image) -> list[tuple[Instance, str | None, str]]:
        from scenewright.tools.evaluator import detect

        return [
            (Instance(tuple(float(v) for v in d.box), 1.0), d.shape, d.color)  # type: ignore[arg-type]
            for d in detect(image.convert("RGB"))
        ]


def _shape(name: str) -> str | None:
    from scenewright.toyworld.vocab import SHAPES

    word = name.strip().lower()
    plural = {p: s for s, p in SHAPES.items()}
    return word if word in SHAPES else plural.get(word)


def exact_thresholds() -> Thresholds:
    """Every instance the evaluator finds counts (confidence 1.0), none is suppressed."""
    return Thresholds(0.5, 0.5, 1.0)
