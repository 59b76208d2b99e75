"""Observers read attention in bounded memory: same maps as the unbounded reference, state that
does not grow with blocks or steps, chunks within budget at FLUX.1 size, and device-safe exits."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from reference_capture import ReferenceCapture
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.executor.attention import (
    AttentionBias,
    CaptureMaps,
    ConceptAttention,
    Edit,
    RegionMask,
    Sites,
    Temperature,
    attention_engine,
    constant,
)
from scenewright.executor.attention.reading import chunk_rows
from scenewright.executor.attention.stitch import HeadSelection, head_scores
from scenewright.executor.composition import conditional_rows, encode_sequence, plan_regions
from scenewright.executor.explain import concept_vectors
from scenewright.executor.sampler import SamplingSettings, sample
from scenewright.executor.stitch.box_pass import cutout_head
from scenewright.planner.plan import Plan, PlanObject

SRC = Path(__file__).resolve().parents[1] / "src" / "scenewright"


@pytest.fixture(scope="module", params=["flux", "sd3"])
def family(request: pytest.FixtureRequest) -> Backend:
    if request.param == "flux":
        return FluxBackend(tiny_flux_pipeline(), max_sequence_length=8)
    return SD3Backend(tiny_sd3_pipeline(sd35=True), max_sequence_length=8)


def _run(
    backend: Backend, edits: list[Any], steps: int = 2, negative: Any = None, encoding: Any = None
) -> None:
    settings = SamplingSettings(32, 48, steps, 3.5, seed=4)
    if encoding is None:
        encoding = backend.encode_prompts(["three red apples left of a blue vase"])
    with attention_engine(backend, edits) as engine:
        sample(backend, encoding, settings, negative=negative, hooks=[engine], progress=False, decode=False)


@pytest.mark.parametrize("setting", ["plain", "region", "bias+temperature", "tiny budget"])
def test_capture_equals_the_unbounded_reference(family: Backend, setting: str) -> None:
    tokens = [1, 2, 5, 9, 17]
    budget = 4096 if setting == "tiny budget" else None  # a few rows per chunk: many chunks
    capture = CaptureMaps(tokens=tokens, **({"budget": budget} if budget else {}))
    reference = ReferenceCapture(tokens=tokens)
    extra: list[Edit] = []
    encoding = negative = None
    if setting == "region":
        encoding, negative, spans = encode_sequence(
            family, ["red apples", "blue vase", "apples and a vase"], ""
        )
        extra = [
            RegionMask(
                text_spans=spans[:2],
                shapes=[(0, 0, 0.5, 1), (0.5, 0, 1, 1)],
                base_span=spans[2],
                base_ratio=0.25,
            )
        ]
    elif setting == "bias+temperature":
        extra = [
            AttentionBias(maps={2: torch.randn(4, 4, generator=torch.Generator().manual_seed(1))}, rows=(0,)),
            Temperature(schedule=constant(1.4)),
        ]
    _run(family, [*extra, capture, reference], encoding=encoding, negative=negative)
    assert capture.count == reference.count > 0
    assert torch.allclose(capture.maps(), reference.maps(), atol=1e-5)
    assert capture.maps().abs().sum() > 0


def _two_object_plan() -> Plan:
    return Plan(
        prompt="a red apple left of a blue vase",
        objects=[
            PlanObject(name="apple", attributes=["red"], boxes=[(0.0, 0.0, 0.6, 0.5)]),
            PlanObject(name="vase", attributes=["blue"], boxes=[(0.3, 0.5, 1.0, 1.0)]),
        ],
    )


def test_head_selection_picks_what_the_full_per_head_stacks_would(family: Backend) -> None:
    """The streaming choice equals choosing offline from every (site, head) map of the reference."""
    plan = _two_object_plan()
    settings = SamplingSettings(32, 48, 3, 3.5, seed=4)
    grid = family.token_grid(32, 48)
    regions = plan_regions(plan)
    encoding, negative, spans = encode_sequence(family, [r.prompt for r in regions] + ["background"], "")
    mask = RegionMask(text_spans=spans, shapes=[r.box for r in regions] + [None], base_ratio=0.0)
    row, switch = conditional_rows(family, settings)[0], 2
    readers = cutout_head(family, plan, spans[:-1], grid, row, switch)
    selection = readers[-1]
    assert isinstance(selection, HeadSelection)
    groups = [list(range(*span)) for span in spans[:-1]]
    everything = ReferenceCapture(
        tokens=[t for g in groups for t in g], per_head=True, sites=Sites.make(steps=(switch - 1, switch))
    )
    with attention_engine(family, [mask, *readers, everything]) as engine:
        sample(
            family, encoding, settings, negative=negative, hooks=[engine], max_steps=switch, progress=False
        )

    def instance_maps(site: Any) -> torch.Tensor:  # (G, H, N): mean over each instance's tokens
        stack = everything.head_totals[site][row] / everything.head_counts[site]
        parts, start = [], 0
        for g in groups:
            parts.append(stack[start : start + len(g)].mean(dim=0))
            start += len(g)
        return torch.stack(parts)

    boxes = torch.stack([b.flatten() for b in selection.boxes])
    if isinstance(readers[0], ConceptAttention):
        concept = readers[0]
        assert concept.total is not None
        indices = [r.object_index for r in regions]
        reference = concept.total[row, indices] / concept.count
        candidates = [s for s in everything.head_totals if s[0] == "single"]
        assert selection.chosen_by == "concept-attention"
    else:
        joints = len(family.transformer.transformer_blocks)
        firsts = [("joint", i) for i in range(max(1, joints // 2))]
        reference = torch.stack([instance_maps(s).mean(dim=1) for s in firsts]).mean(dim=0)
        candidates = [("joint", i) for i in range(joints // 2, joints)]
        assert selection.chosen_by == "mean over heads"
    best, best_score = None, -float("inf")
    for site in candidates:
        scores = head_scores(instance_maps(site), reference, boxes)
        head = int(scores.argmax())
        if float(scores[head]) > best_score:
            best, best_score = (site, head), float(scores[head])
    assert selection.best == best
    site, head = best
    assert torch.allclose(selection.maps().flatten(1), instance_maps(site)[:, head], atol=1e-5)


def _state_numel(edit: Any) -> int:
    """Numbers an observer holds between blocks (every tensor it keeps, however nested)."""

    def count(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel()
        if isinstance(value, dict):
            return sum(count(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(count(v) for v in value)
        return 0

    skip = {"concepts", "boxes", "stream", "_block"}  # inputs, and per-block scratch dropped after each
    return sum(count(v) for k, v in vars(edit).items() if k not in skip)


def _observers(backend: TinyBackend) -> list[Edit]:
    plan = _two_object_plan()
    concept = ConceptAttention(concepts=concept_vectors(backend, plan))
    grid = backend.token_grid(32, 32)
    boxes = [torch.zeros(grid, dtype=torch.bool), torch.zeros(grid, dtype=torch.bool)]
    boxes[0][:4], boxes[1][4:] = True, True
    selection = HeadSelection(groups=[[1, 2], [4, 5]], boxes=boxes, row=1)
    return [CaptureMaps(tokens=[1, 2, 4]), concept, selection]


def test_observer_state_does_not_grow_with_blocks_or_steps() -> None:
    sizes = []
    for blocks, steps in [(1, 2), (3, 5)]:
        backend = TinyBackend.random(
            TinyConfig(double_blocks=blocks, single_blocks=blocks, text_layers=1, patch=4)
        )
        observers = _observers(backend)
        settings = SamplingSettings(32, 32, steps, 3.0, seed=1)
        with attention_engine(backend, observers) as engine:
            sample(backend, backend.encode_prompts(["a red circle and a blue square"]), settings,
                   hooks=[engine], progress=False, decode=False)  # fmt: skip
        assert all(getattr(o, "count", 1) > 0 for o in observers)
        sizes.append([_state_numel(o) for o in observers])
    assert sizes[0] == sizes[1]
    assert all(size > 0 for size in sizes[0])


@pytest.mark.parametrize(
    ("batch", "keys"),
    [(1, 512 + 4096), (2, 333 + 4096), (1, 4 * 512 + 4096)],  # FLUX.1-dev, SD3.5 with CFG, FLUX 3 regions
)
def test_one_chunk_of_a_real_size_block_stays_within_256_mib(batch: int, keys: int) -> None:
    rows = chunk_rows(batch, heads=24, n_keys=keys)
    logits_and_softmax = 2 * 4 * batch * 24 * rows * keys
    mask = 4 * batch * rows * keys
    assert 64 <= rows < 4096 and logits_and_softmax + mask <= 256 * 2**20


def test_nothing_in_src_calls_numpy_on_a_tensor_directly() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "arrays.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "numpy"
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, f"use scenewright.arrays.to_numpy instead of .numpy(): {offenders}"
