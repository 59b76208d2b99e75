"""The bars of issues 5, 7 and 16 on the shipped models, judged by the exact evaluator (minutes: slow).

`make test-slow` runs them; docs/benchmarks.md holds the figures they guard. Speed bars live in
`bench toyworld`'s side-by-side ratios, not here.
"""

from __future__ import annotations

import pytest

from scenewright.backends.tiny import TinyBackend
from scenewright.bench.toyworld import StrategyRun, case_settings, run_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded() -> TinyBackend:
    return TinyBackend.embedded()


@pytest.fixture(scope="module")
def tiny16() -> TinyBackend:
    from scenewright.backends.registry import TINY16_DIR

    return TinyBackend.from_pretrained(TINY16_DIR, name="tiny16")


def _run(
    backend: TinyBackend, strategies: list[str], sets: list[str], n: int, seed: int = 0
) -> dict[str, StrategyRun]:
    # The settings `bench toyworld` gives each case: the model's defaults and the case's seed.
    settings_for = case_settings(backend, None, None, None)
    runs = run_benchmark(backend, strategies, sets, n, seed=seed, settings_for=settings_for, progress=False)
    return {run.strategy: run for run in runs}


def test_the_embedded_model_meets_its_bars(embedded: TinyBackend) -> None:
    vanilla = _run(embedded, ["vanilla"], ["single", "two"], 100)["vanilla"]
    assert vanilla.accuracy("single", "color_ok") >= 0.97
    assert vanilla.accuracy("single") >= 0.90
    assert vanilla.accuracy("two") >= 0.60


def test_stitch_meets_the_strategy_bars(embedded: TinyBackend) -> None:
    sets = ["counting", "position", "binding", "complex"]
    runs = _run(embedded, ["vanilla", "stitch"], sets, 50)
    vanilla, stitch = runs["vanilla"], runs["stitch"]
    for name, bar in (("counting", 0.80), ("position", 0.85), ("binding", 0.80), ("complex", 0.60)):
        assert stitch.accuracy(name) >= bar, name
        assert stitch.accuracy(name) >= 1.5 * vanilla.accuracy(name), name


def test_tiny16_meets_its_single_and_two_object_bars(tiny16: TinyBackend) -> None:
    """Issue 16, item 2: single objects >= 97% (measured 100%), two objects both present >= 75%
    (measured 87%; 79% before the pooled-swap continuation, 67% before the shape-weighted one,
    50% before the first CPU one)."""
    vanilla = _run(tiny16, ["vanilla"], ["single", "two"], 100)["vanilla"]
    assert vanilla.accuracy("single") >= 0.97
    assert vanilla.accuracy("two") >= 0.75


def test_tiny16_regional_meets_its_position_and_binding_bars(tiny16: TinyBackend) -> None:
    """Issue 16, item 3: regional position >= 80% (measured 86%, vanilla 2%) and binding >=
    vanilla + 20 (measured 92% against 70%; 84% on the weights before the pooled-swap training)."""
    runs = _run(tiny16, ["vanilla", "regional"], ["position", "binding"], 50)
    assert runs["regional"].accuracy("position") >= 0.80
    assert runs["regional"].accuracy("position") >= runs["vanilla"].accuracy("position") + 0.5
    assert runs["regional"].accuracy("binding") >= runs["vanilla"].accuracy("binding") + 0.20


def test_tiny16_taca_binds_no_worse_than_vanilla_and_adds_to_regional(tiny16: TinyBackend) -> None:
    """Issue 16, item 3: TACA's binding >= vanilla's (measured 74% against 70%) and
    regional+taca >= regional on both sets (measured 94% / 90% against 92% / 86%, binding /
    position)."""
    runs = _run(tiny16, ["vanilla", "regional", "taca", "regional+taca"], ["position", "binding"], 50)
    assert runs["taca"].accuracy("binding") >= runs["vanilla"].accuracy("binding")
    for name in ("binding", "position"):
        assert runs["regional+taca"].accuracy(name) >= runs["regional"].accuracy(name), name
    assert runs["regional+taca"].accuracy("binding") >= runs["vanilla"].accuracy("binding") + 0.20
    assert runs["regional+taca"].accuracy("position") >= 0.80


def test_tiny16_numina_meets_its_counting_bar(tiny16: TinyBackend) -> None:
    """Issue 16, item 3: NUMINA counting >= vanilla + 20 points (measured 78% against 50%, with
    the count layout split at the map's peaks and tiny16's tuned options)."""
    runs = _run(tiny16, ["vanilla", "numina"], ["counting"], 50)
    assert runs["numina"].accuracy("counting") >= runs["vanilla"].accuracy("counting") + 0.20


def test_tiny16_stitch_box_pass_meets_its_position_and_counting_bars(tiny16: TinyBackend) -> None:
    """Issue 16, item 3: the paper's Stitch box pass (with tiny16's options: the seam, the canvas
    held for 0.3 of the steps and empty boxes borrowing a sibling's draft) at position and counting
    >= 80% (measured 92% and 92%, vanilla 2% and 50%; 94% and 76% without the canvas hold and the
    borrowing)."""
    box = "stitch:object_pass=box"
    runs = _run(tiny16, [box], ["counting", "position"], 50)
    assert runs[box].accuracy("counting") >= 0.80
    assert runs[box].accuracy("position") >= 0.80


def test_tiny16_refine_by_attention_betters_failing_cases_and_worsens_none(tiny16: TinyBackend) -> None:
    """Issue 16, item 3: refine with ``verifier=attention`` on 100 position cases vanilla fails
    (seed 300): more objects in their boxes than vanilla's image in >= 10 cases and fewer in none
    (measured 53 and 0; 57 and 0 on the weights before the pooled-swap training, 64 and 1 before
    a repaint was kept off instances already in their boxes)."""
    refine = "refine:base=vanilla:verifier=attention"
    runs = _run(tiny16, ["vanilla", refine], ["position"], 100, seed=300)
    pairs = list(zip(runs["vanilla"].results["position"], runs[refine].results["position"], strict=True))
    assert not any(base["passed"] for base, _ in pairs)
    better = sum(sum(after["in_boxes"]) > sum(base["in_boxes"]) for base, after in pairs)
    worse = [after["prompt"] for base, after in pairs if sum(after["in_boxes"]) < sum(base["in_boxes"])]
    assert better >= 10
    assert worse == []
