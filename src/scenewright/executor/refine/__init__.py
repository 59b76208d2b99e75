"""Refine: check every planned object in the finished image, re-generate the failures in place.

The check reads the model's attention maps (:mod:`scenewright.executor.explain`: ConceptAttention
on FLUX, cross-attention on each object's noun on SD3 and the embedded models) from a pass over
the finished image re-noised; an object passes when it owns tokens in each of its boxes and no
blob of it, as strong as in its boxes, lies outside them. Each failing object gets a mask on the
token grid: what a segmenter finds in its boxes and in its stray blobs' boxes (a SAM model when
one is given, else the object's own attention map thresholded near them; see
:mod:`scenewright.tools.segment`), together with those boxes and stray blobs themselves, grown by
a token. Only the boxes the object does not own yet are in, and they are in whole: a missing
object has almost nothing to segment, yet must be drawn there. The strays are always in, or a
misplaced instance would survive. No mask reaches an instance already in its box (the boxes of
objects that pass, and each box a failing object already owns, with that instance's tokens
beyond it: :func:`protected_tokens`). The image is inpainted inside the mask only: the outside is
held on the original's noise path and the original pixels are pasted back, so no pixel outside
the mask changes. A round is kept only if the verifier (that attention check, the toy world's
exact detector, or an open-vocabulary detector on real images) sees no object and no relation
get worse and something get better; at most ``rounds``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from scenewright.arrays import to_numpy, to_numpy_bool
from scenewright.backends.base import Backend, PromptEncoding
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit
from scenewright.executor.attention.masks import box_to_tokens
from scenewright.executor.catalogue import VERIFIERS, bounds, defaults
from scenewright.executor.composition import sample_with_edits
from scenewright.executor.explain import image_tensor, read_object_maps
from scenewright.executor.options import Bound, require_choice
from scenewright.executor.refine.inpaint import KeepOutsideMask, composite, token_mask_to_pixels
from scenewright.executor.refine.story import explain_outcome, explain_round
from scenewright.executor.regional import regional_edit, text_boost_edit
from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings, make_generator
from scenewright.executor.vanilla import RenderResult
from scenewright.planner.plan import Plan
from scenewright.tools.detection.verify import DetectorVerifier
from scenewright.tools.segment import AttentionMaskSegmenter, Segmenter, blob_boxes, tokens_touching

# Every option's default, declared once in the catalogue.
DEFAULTS = defaults("refine")

DEFAULT_ROUNDS = DEFAULTS.rounds
MIN_BLOB_TOKENS = 2
# A blob outside an object's boxes counts as a stray copy only where the object's attention there
# peaks at least this high against its peak inside its boxes: weaker blobs are the map's own
# spill, and counting them failed 13 of 45 objects that the toy world's evaluator found in their
# boxes on tiny16 (6 of 45 at 0.5, 5 at 1.0, while still catching 29 of 39 wrong objects).
STRAY_PEAK_RATIO = 1.0
# A segmenter's mask is grown by this fraction of the image's shorter side (at least a pixel)
# before it is snapped to tokens: SAM's masks hug the object, while its soft edge and shadow
# must be repainted with it.
SEGMENT_DILATION = 0.01


@dataclass
class ObjectCheck:
    index: int
    name: str
    boxes_hit: int
    boxes: int
    stray_blobs: int
    mass_in_boxes: float

    @property
    def ok(self) -> bool:
        return self.boxes_hit == self.boxes and self.stray_blobs == 0


def check_objects(
    maps: torch.Tensor, plan: Plan, attention: torch.Tensor | None = None
) -> tuple[list[ObjectCheck], dict[int, torch.Tensor]]:
    """Each object's verdict, and each object's stray blobs as token masks.

    ``maps`` is the per-token ownership (objects + background); ``attention``, each object's own
    map, when given, keeps only the stray blobs where the object peaks as high as in its boxes
    (see ``STRAY_PEAK_RATIO``).
    """
    grid = (maps.shape[1], maps.shape[2])
    owner = maps.argmax(dim=0)
    checks, strays = [], {}
    for index, obj in enumerate(plan.objects):
        mine = to_numpy_bool(owner == index)
        boxes = [to_numpy_bool(box_to_tokens(b, grid)) for b in obj.boxes]
        union = np.zeros(grid, dtype=bool)
        for box in boxes:
            union |= box
        hit = sum(bool((mine & box).any()) for box in boxes)
        labels, count = ndimage.label(mine)
        stray = np.zeros(grid, dtype=bool)
        blobs = 0
        own_map = to_numpy(attention[index]) if attention is not None else None
        in_box_peak = float(own_map[union].max()) if own_map is not None and union.any() else 0.0
        for blob in range(1, count + 1):
            part = labels == blob
            if part.sum() < MIN_BLOB_TOKENS or (part & union).any():
                continue
            if own_map is not None and float(own_map[part].max()) < STRAY_PEAK_RATIO * in_box_peak:
                continue
            stray |= part
            blobs += 1
        total = float(maps[index].sum())
        mass = float(maps[index][torch.from_numpy(union)].sum()) / total if total > 0 and union.any() else 0.0
        checks.append(ObjectCheck(index, obj.name, hit, len(boxes), blobs, mass))
        strays[index] = torch.from_numpy(stray)
    return checks, strays


def boxes_to_repaint(
    index: int, plan: Plan, maps: torch.Tensor, strays: Mapping[int, torch.Tensor]
) -> list[tuple[float, float, float, float]]:
    """The boxes a failing object is redrawn in: those it does not own yet. An instance already in
    its box is left alone (repainting it can only lose it), unless the object owns every box and
    has no stray copy, so that only another verifier (a count, a colour) failed it: then all."""
    grid = (maps.shape[1], maps.shape[2])
    mine = maps.argmax(dim=0) == index
    boxes = list(plan.objects[index].boxes)
    missed = [box for box in boxes if not bool((mine & box_to_tokens(box, grid)).any())]
    return missed if missed or bool(strays[index].any()) else boxes


def protected_tokens(
    plan: Plan, maps: torch.Tensor, strays: Mapping[int, torch.Tensor], ok: Sequence[bool]
) -> torch.Tensor:
    """The (rows, cols) tokens no repaint may touch: every box of an object that passes, and each
    box that a failing object keeps (:func:`boxes_to_repaint` leaves it out), each with the
    object's own tokens that reach out of it.

    Repainting a neighbour that was right is how a repair makes the image worse: on tiny16 a
    ring drawn in its box but failing for a stray copy was cut into fragments by the grown masks
    of the heart and circle beside it (bench position, seed 300, case 54)."""
    grid = (maps.shape[1], maps.shape[2])
    owner = maps.argmax(dim=0)
    protected = np.zeros(grid, dtype=bool)
    for index, obj in enumerate(plan.objects):
        redrawn = [] if ok[index] else boxes_to_repaint(index, plan, maps, strays)
        labels, _ = ndimage.label(to_numpy_bool(owner == index))
        for box in obj.boxes:
            if box in redrawn:
                continue
            tokens = to_numpy_bool(box_to_tokens(box, grid))
            # the object's own tokens that reach out of the box belong to the same instance
            touching = np.unique(labels[tokens & (labels > 0)])
            protected |= tokens | np.isin(labels, touching[touching > 0])
    return torch.from_numpy(protected)


def object_mask(
    index: int,
    plan: Plan,
    image: Image.Image,
    maps: torch.Tensor,
    strays: dict[int, torch.Tensor],
    segmenter: Segmenter | None = None,
) -> tuple[torch.Tensor, str]:
    """One failing object's (rows, cols) token mask, and the name of what segmented it.

    The prompts are the planned boxes it does not own yet and the boxes of its stray blobs, in pixels.
    """
    grid = (maps.shape[1], maps.shape[2])
    width, height = image.size
    boxes = boxes_to_repaint(index, plan, maps, strays)
    planned = [(x0 * width, y0 * height, x1 * width, y1 * height) for x0, y0, x1, y1 in boxes]
    prompts = planned + blob_boxes(strays[index], image.size)
    if segmenter is None:
        fallback = AttentionMaskSegmenter(maps[index])
        tokens = torch.from_numpy(fallback.token_mask(image.size, prompts))
        name = fallback.name
    else:
        pixels = np.asarray(segmenter.segment(image, prompts), dtype=bool)
        if pixels.shape != (height, width):
            raise ValueError(
                f"segmenter {segmenter.name} gave a {pixels.shape} mask for a {height}x{width} image"
            )
        grow = max(1, round(SEGMENT_DILATION * min(width, height)))
        if pixels.any():
            pixels = ndimage.binary_dilation(pixels, iterations=grow)
        tokens = tokens_touching(pixels, grid)
        name = segmenter.name
    for box in boxes:
        tokens |= box_to_tokens(box, grid)
    return tokens | strays[index], name


# What ``refine:key=value`` may set; ``base`` is checked against the registry by the parser.
OPTIONS: dict[str, Bound] = bounds("refine")
# The repaint runs this share of the run's steps, on a coarser schedule over the same noise range.
# Its every step carries the failing objects' region prompts: on SD3.5-medium at 1024 px a repaint
# of all 28 steps for three objects was 1.48 pipelines of transformer work a round (bench models
# --scale narrow), against a budget of one; half the steps, 0.77. On tiny16 (position, seed 300,
# 100 cases vanilla fails) the repaint of half the steps made 20 pass and none worse, against 19
# and none with every step, in 0.71x the time.
DEFAULT_REPAIR_FRACTION = DEFAULTS.repair_fraction


def repair_steps(steps: int, fraction: float) -> int:
    """Steps of the repaint: ``fraction`` of the run's, at least one."""
    return max(1, round(steps * fraction))


@dataclass
class Verdict:
    """What a verifier says of one image: which objects pass, and per-object states to compare.

    ``states[i]`` is a tuple where larger is better in every place; a round is kept only when no
    object's state and no relation gets worse anywhere and something gets better (Pareto), so a
    repair that fixes one object by losing another is refused.
    """

    ok: list[bool]
    states: list[tuple[float, ...]]
    relations: list[bool]
    # What the verifier saw of each object, for people (found/wanted, in_boxes, colours, boxes
    # reached, stray blobs): the round explanations compare these between images.
    facts: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The JSON a round's record keeps of this verdict."""
        return {
            "objects": [dict(f) for f in self.facts],
            "states": [list(s) for s in self.states],
            "relations": list(self.relations),
        }

    def improves_on(self, other: Verdict) -> bool:
        never_worse = all(
            all(new >= old for new, old in zip(a, b, strict=True))
            for a, b in zip(self.states, other.states, strict=True)
        ) and all(new >= old for new, old in zip(self.relations, other.relations, strict=True))
        better = self.states != other.states or self.relations != other.relations
        return never_worse and better


def attention_verdict(checks: list[ObjectCheck]) -> Verdict:
    """From the attention checks: passing, boxes owned (more is better), stray blobs (fewer)."""
    return Verdict(
        ok=[c.ok for c in checks],
        states=[(float(c.ok), float(c.boxes_hit), -float(c.stray_blobs)) for c in checks],
        relations=[],
        facts=[{"boxes_hit": c.boxes_hit, "boxes": c.boxes, "stray_blobs": c.stray_blobs} for c in checks],
    )


def evaluator_verdict(image: Image.Image, plan: Plan) -> Verdict:
    """From the toy world's exact detector: present, count exact, inside its boxes; relations."""
    from scenewright.tools.evaluator import score_plan

    score = score_plan(image, plan)
    return Verdict(
        ok=[o.count_exact and o.in_boxes for o in score.objects],
        states=[
            (float(o.present), float(o.count_exact), float(o.in_boxes), -abs(o.found - o.wanted))
            for o in score.objects
        ],
        relations=list(score.relations),
        facts=[
            {
                "found": o.found,
                "wanted": o.wanted,
                "in_boxes": o.in_boxes,
                # the colours of every shape of its kind: "green -> blue" when a colour is mended
                "colours": sorted(d.color for d in score.detections if o.shape and d.shape == o.shape),
            }
            for o in score.objects
        ],
    )


def detector_verdict(image: Image.Image, plan: Plan, detector: DetectorVerifier) -> Verdict:
    """From an open-vocabulary detector: count, colour, boxes per object (its ``state``); relations."""
    report = detector.check(image, plan)
    return Verdict(
        ok=[o.ok for o in report.objects],
        states=[o.state for o in report.objects],
        relations=list(report.relations),
        facts=[
            {"found": o.found, "wanted": o.wanted, "in_boxes": o.in_boxes, "colours": sorted(o.colors)}
            for o in report.objects
        ],
    )


def resolve_verifier(verifier: str, backend: Backend, detector: DetectorVerifier | None = None) -> str:
    """ "auto" made concrete: the exact detector on the embedded models (it is the judge, and
    attention still made 2 of 100 of tiny16's images worse on the benchmark), else the
    open-vocabulary detector when one is given, else the attention maps."""
    if verifier != "auto":
        return verifier
    from scenewright.backends.tiny import TinyBackend

    if isinstance(backend, TinyBackend):
        return "evaluator"
    return "detector" if detector is not None else "attention"


def _verdict(
    verifier: str,
    image: Image.Image,
    plan: Plan,
    checks: list[ObjectCheck],
    detector: DetectorVerifier | None = None,
) -> Verdict:
    if verifier == "attention":
        return attention_verdict(checks)
    if verifier == "detector" and detector is not None:
        return detector_verdict(image, plan, detector)
    return evaluator_verdict(image, plan)


def repair_pass(
    backend: Backend, sub_plan: Plan, settings: SamplingSettings, options: Mapping[str, Any]
) -> tuple[PromptEncoding, PromptEncoding, list[Edit]]:
    """The regional pass that redraws the failing objects, on every step, with the regional
    options the model was tuned with (``options``: its ``strategy_defaults["regional"]``, already
    checked by the registry); with the paper's defaults on tiny16 regional drew 14% of position
    cases, tuned 48%.

    It takes the mask's shape and boost only: ``open_image_after`` needs a second sampling call
    and ``guidance_steps`` other settings, and refine's bar was measured without both, so they
    are left to regional itself until measured here."""
    shape = {key: options[key] for key in ("base_ratio", "image_attention") if key in options}
    encoding, negative, region = regional_edit(backend, sub_plan, settings, inject_fraction=1.0, **shape)
    boost = text_boost_edit(backend, encoding, region, settings, float(options.get("text_boost", 0.0)))
    return encoding, negative, [region, *([boost] if boost else [])]


def render_refine(
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    *,
    hooks: Sequence[SamplerHook] = (),
    edits: Sequence[Edit] = (),
    progress: bool = False,
    base: str = DEFAULTS.base,
    rounds: int = DEFAULT_ROUNDS,
    image: Image.Image | None = None,
    segmenter: Segmenter | None = None,
    verifier: str | DetectorVerifier = DEFAULTS.verifier,
    run_base: Callable[..., RenderResult] | None = None,
    detector: DetectorVerifier | None = None,
    repair_options: Mapping[str, Any] | None = None,
    repair_fraction: float = DEFAULT_REPAIR_FRACTION,
) -> RenderResult:
    """Run ``base`` (or take ``image``, already rendered from ``plan``), then up to ``rounds`` of
    check-and-inpaint on the objects that fail.

    ``segmenter`` draws each failing object's mask (None: its attention map); the report says
    which one made every mask. ``verifier`` decides which objects fail and whether a round is
    kept: "attention" (the model's attention maps, any model), "evaluator" (the toy world's exact detector,
    for the embedded model) or "auto" (the evaluator on the embedded models, where attention
    still made 2 of 100 of tiny16's images worse on the benchmark; the detector where one is
    given, attention elsewhere) or "detector" (``detector``, a :class:`~scenewright.tools.detection.verify.
    DetectorVerifier`, which may also be passed as ``verifier`` itself). ``run_base`` renders a
    strategy by name (the registry passes its ``run_strategy``: refine cannot import the registry
    that lists refine itself). ``repair_fraction``: the share of the run's steps each repaint
    takes (a coarser schedule from the same full noise).
    """
    if isinstance(verifier, DetectorVerifier):
        detector = verifier
        verifier = "detector"
    require_choice("verifier", verifier, VERIFIERS)
    verifier = resolve_verifier(verifier, backend, detector)
    if verifier == "detector" and detector is None:
        raise InvalidInputError(
            "verifier", "refine:verifier=detector needs a detector", "pass --detector CHECKPOINT"
        )
    if rounds < 0:
        raise InvalidInputError("rounds", f"{rounds} is negative", "use rounds=0 or more")
    if not 0.0 < repair_fraction <= 1.0:
        raise InvalidInputError(
            "repair_fraction", f"{repair_fraction} is outside (0, 1]", "use repair_fraction=0.5 to 1"
        )

    if image is None:
        if run_base is None:
            raise InvalidInputError(
                "base", "refine needs the image to correct or a way to render it", "pass image= or run_base="
            )
        result = run_base(base, backend, plan, settings, hooks=hooks, progress=progress)
    else:
        tensor = image_tensor(image)
        clean = backend.encode_image(tensor, settings.height, settings.width)
        given = SampleResult(latents=clean, images=tensor, settings=settings)
        result = RenderResult(image=image, plan=plan, settings=settings, strategy=base, sample=given)
    image = result.image
    grid = backend.token_grid(settings.height, settings.width)
    read = read_object_maps(backend, image, plan, settings)
    maps = read.ownership
    checks, strays = check_objects(maps, plan, read.attention)
    verdict = _verdict(verifier, image, plan, checks, detector)
    history: list[dict[str, Any]] = [{"round": 0, "checks": [asdict(c) | {"ok": c.ok} for c in checks], "verdict": verdict.ok, "kept": True, **verdict.record()}]  # fmt: skip
    masks: list[np.ndarray] = []
    for round_index in range(1, rounds + 1):
        failing = [index for index, ok in enumerate(verdict.ok) if not ok]
        if not failing:
            break
        token_mask = torch.zeros(grid, dtype=torch.bool)
        made: list[dict[str, object]] = []
        for index in failing:
            mine, by = object_mask(index, plan, image, maps, strays, segmenter)
            token_mask |= mine
            made.append(
                {
                    "object": index,
                    "name": plan.objects[index].name,
                    "segmenter": by,
                    "tokens": int(mine.sum()),
                }
            )
        token_mask = F.max_pool2d(token_mask[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
        token_mask &= ~protected_tokens(plan, maps, strays, verdict.ok)
        if not token_mask.any():
            history.append({"round": round_index, "failing": failing, "masks": made, "kept": False, "note": "nothing to repaint outside the boxes already right"})  # fmt: skip
            history[-1]["explanation"] = explain_round(plan, history[-1], verdict.record(), None)
            break
        sub_plan = plan.model_copy(update={"objects": [plan.objects[i] for i in failing], "relations": []})
        encoding, negative, repair_edits = repair_pass(backend, sub_plan, settings, repair_options or {})
        clean = backend.encode_image(image_tensor(image), settings.height, settings.width)
        retry = SamplingSettings(
            **{
                **asdict(settings),
                "seed": settings.seed + round_index,
                "steps": repair_steps(settings.steps, repair_fraction),
            }
        )
        noise = backend.prepare_noise(1, settings.height, settings.width, make_generator(retry.seed))
        keep = KeepOutsideMask(backend, clean, noise, token_mask)
        redone = sample_with_edits(
            backend, encoding, retry, [*repair_edits, *edits], negative=negative, hooks=[keep], latents=noise,
            progress=progress,
        )  # fmt: skip
        pixel_mask = token_mask_to_pixels(token_mask, image.size)
        candidate = composite(image, backend.to_pil(redone.images)[0], pixel_mask)
        new_read = read_object_maps(backend, candidate, plan, settings)
        new_maps = new_read.ownership
        new_checks, new_strays = check_objects(new_maps, plan, new_read.attention)
        new_verdict = _verdict(verifier, candidate, plan, new_checks, detector)
        kept = new_verdict.improves_on(verdict)
        history.append({"round": round_index, "failing": failing, "masks": made, "checks": [asdict(c) | {"ok": c.ok} for c in new_checks], "verdict": new_verdict.ok, "kept": kept, **new_verdict.record()})  # fmt: skip
        history[-1]["explanation"] = explain_round(plan, history[-1], verdict.record(), new_verdict.record())
        if not kept:
            break
        image, maps, checks, strays, verdict = candidate, new_maps, new_checks, new_strays, new_verdict
        masks.append(pixel_mask)
    segmented_by = segmenter.name if segmenter is not None else AttentionMaskSegmenter.name
    result.report["refine"] = {
        "base": result.strategy,
        "segmenter": segmented_by,
        "verifier": verifier,
        "repair_steps": repair_steps(settings.steps, repair_fraction),
        **({"detector": detector.name} if verifier == "detector" and detector is not None else {}),
        "rounds": history,
        "summary": explain_outcome(plan, history, rounds),
    }
    final = image_tensor(image)
    changed = np.zeros((image.height, image.width), dtype=bool)
    for mask in masks:
        changed |= mask
    return RenderResult(
        image=image, plan=plan, settings=settings, strategy=f"refine:{result.strategy}",
        sample=SampleResult(latents=backend.encode_image(final, settings.height, settings.width), images=final, settings=settings),
        report=result.report, artifacts={"base_image": result.image, "refine_mask": changed},
    )  # fmt: skip
