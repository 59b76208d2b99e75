"""Each image a benchmark command renders gets its verdict, and the run ends with its failures.

``batch`` and ``eval geneval`` write one record per image (the per-object lines every face
prints, the verdict, whether the image is blank) and list, in ``summary.json`` and at the end of
the run, the images that differ from their plan, those nothing could verify, and the blank ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scenewright.terminal import printable

if TYPE_CHECKING:
    from PIL import Image

    from scenewright.planner.plan import Plan

# The lists summary.json keeps, by the verdicts they hold.
LISTS = ("differs", "cannot_verify", "blank")


def judge_image(image: Image.Image, plan: Plan, tiny: bool) -> dict[str, Any]:
    """The verdict of a render with no agent around it: the exact judge on the embedded models;
    elsewhere every object is "not checked" (a detector judges such folders afterwards)."""
    from scenewright.agent.nodes import is_blank
    from scenewright.agent.object_report import exact_rows, lines_from_rows, short_list, verdict

    if tiny:
        rows, verified = exact_rows(image, plan)
    else:
        why = "no judge while rendering on this backend (score the folder with a detector)"
        rows, verified = (
            [{"name": o.name, "found": None, "ok": None, "unchecked": why} for o in plan.objects],
            None,
        )
    blank = bool(plan.objects) and is_blank(image)
    lines = lines_from_rows(plan, rows)
    said = verdict(lines, False if blank else verified)
    return {
        "verdict": said,
        "objects": short_list(lines),
        "lines": [line.text for line in lines],
        "blank": blank,
    }


def failures_of(images: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The images that differ from their plan, those nothing could verify, and the blank ones."""
    from scenewright.agent.object_report import CANNOT_VERIFY, DIFFERS

    return {
        "differs": [i for i in images if i["verdict"] == DIFFERS],
        "cannot_verify": [i for i in images if i["verdict"] == CANNOT_VERIFY],
        "blank": [i for i in images if i["blank"]],
    }


def report_lines(images: Sequence[dict[str, Any]]) -> list[str]:
    """The end of a run: how many images match, then each failure, unverified and blank image."""
    from scenewright.agent.object_report import MATCHES

    lists = failures_of(images)
    matched = sum(i["verdict"] == MATCHES for i in images)
    lines = [f"verdicts: {matched}/{len(images)} images match the plan, {len(lists['differs'])} differ, "
             f"{len(lists['cannot_verify'])} cannot be verified, {len(lists['blank'])} blank"]  # fmt: skip
    for kind, items in lists.items():
        lines.extend(
            printable(f"{kind}: {i['index']:05d} seed {i['seed']}: {i['prompt']} [{i['objects']}]")
            for i in items
        )
    return lines


def listed(record: dict[str, Any]) -> dict[str, Any]:
    """What summary.json lists of an image: which, what was asked, the verdict and its objects."""
    return {key: record[key] for key in ("index", "seed", "prompt", "verdict", "objects", "blank")}


def order(item: dict[str, Any]) -> tuple[int, int]:
    return int(item["index"]), int(item["seed"])
