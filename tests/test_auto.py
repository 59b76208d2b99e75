"""``auto`` picks from a measured table: kinds of plan, ranking, boxes, the shipped tables, and
the ``bench auto-table`` command that writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenewright.backends.registry import TINY16_DIR
from scenewright.backends.tiny import AUTO_TABLE_FILE, EMBEDDED_MODEL_DIR, TinyBackend, TinyConfig
from scenewright.bench.auto_table import build_table, rank
from scenewright.cli import main
from scenewright.errors import BackendError, InvalidInputError
from scenewright.executor.auto import PLAN_KINDS, choose_strategy, plan_kind, table_for
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import get_strategy, run_strategy
from scenewright.planner.plan import Plan, PlanObject, PlanRelation

BOX_A = (0.0, 0.0, 0.5, 1.0)
BOX_B = (0.5, 0.0, 1.0, 1.0)


def obj(name: str, count: int = 1, boxed: bool = True) -> PlanObject:
    boxes = [BOX_A] * count if boxed else []
    return PlanObject(name=name, count=count, attributes=["red"], boxes=boxes)


def test_plan_kind_matches_the_benchmark_sets() -> None:
    assert plan_kind(Plan(prompt="a quiet scene")) is None
    assert plan_kind(Plan(prompt="x", objects=[obj("circle")])) == "single"
    assert plan_kind(Plan(prompt="x", objects=[obj("circle", 3)])) == "counting"
    assert plan_kind(Plan(prompt="x", objects=[obj("circle"), obj("square")])) == "binding"
    related = Plan(
        prompt="x",
        objects=[obj("circle"), obj("square")],
        relations=[PlanRelation(subject=0, relation="left of", object=1)],
    )
    assert plan_kind(related) == "position"
    assert plan_kind(Plan(prompt="x", objects=[obj("circle", 2), obj("square")])) == "complex"


TABLE = {
    "measured_on": "toy",
    "kinds": {
        "counting": {
            "ranking": [
                {"strategy": "stitch+taca", "passed": 0.9, "seconds_per_image": 1.0},
                {"strategy": "numina", "passed": 0.6, "seconds_per_image": 2.0},
                {"strategy": "vanilla", "passed": 0.5, "seconds_per_image": 1.0},
            ]
        },
        "single": {"ranking": [{"strategy": "taca", "passed": 1.0, "seconds_per_image": 1.0}]},
    },
}


def test_auto_takes_the_best_measured_strategy_the_plan_can_run() -> None:
    boxed = Plan(prompt="3 red circles", objects=[obj("circle", 3)])
    name, why = choose_strategy(boxed, TABLE)
    assert name == "stitch+taca"
    assert why == "best measured for a counting plan: passed 90% of counting cases on toy"
    unboxed = Plan(prompt="3 red circles", objects=[obj("circle", 3, boxed=False)])
    name, why = choose_strategy(unboxed, TABLE)
    assert name == "numina" and "better-ranked ones need boxes" in why and "60%" in why
    assert choose_strategy(Plan(prompt="a red circle", objects=[obj("circle")]), TABLE)[0] == "taca"
    # A kind the table does not cover, or a plan without objects: vanilla, saying why.
    two = Plan(prompt="x", objects=[obj("circle"), obj("square")])
    assert choose_strategy(two, TABLE) == ("vanilla", "no measured strategy for a binding plan on toy")
    assert choose_strategy(Plan(prompt="empty"), TABLE)[0] == "vanilla"


def test_ranking_is_by_share_passed_then_seconds() -> None:
    summary = {
        "slow": {"counting": 0.8, "seconds_per_image": 3.0},
        "fast": {"counting": 0.8, "seconds_per_image": 1.0},
        "best": {"counting": 0.9, "seconds_per_image": 9.0},
        "unmeasured": {"position": 1.0, "seconds_per_image": 1.0},
        "nan": {"counting": float("nan"), "seconds_per_image": 1.0},
    }
    assert [row["strategy"] for row in rank(summary, "counting")] == ["best", "fast", "slow"]
    # Within 5% of the fastest, a tie goes to the candidate listed first (the simplest).
    tie = {
        "vanilla": {"single": 1.0, "seconds_per_image": 2.40},
        "taca": {"single": 1.0, "seconds_per_image": 2.39},
    }
    assert [row["strategy"] for row in rank(tie, "single")] == ["vanilla", "taca"]
    table = build_table({"n": 4, "seed": 0, "sets": ["counting"], "summary": summary}, "toy", "cmd")
    assert list(table["kinds"]) == ["counting"] and table["measured_on"] == "toy"
    with pytest.raises(InvalidInputError, match="sets"):
        build_table({"sets": ["two"], "summary": summary}, "toy", "cmd")
    with pytest.raises(InvalidInputError, match="from-json"):
        build_table({"sets": ["counting"], "summary": {}}, "toy", "cmd")


@pytest.mark.parametrize("folder", [EMBEDDED_MODEL_DIR, TINY16_DIR], ids=["tiny", "tiny16"])
def test_each_embedded_model_ships_a_measured_table(folder: Path) -> None:
    table = json.loads((folder / AUTO_TABLE_FILE).read_text())
    assert set(table["kinds"]) == set(PLAN_KINDS)
    for kind, entry in table["kinds"].items():
        ranking = entry["ranking"]
        assert any(row["strategy"] == "vanilla" for row in ranking), kind
        passed = [row["passed"] for row in ranking]
        assert passed == sorted(passed, reverse=True) and all(0 <= p <= 1 for p in passed)
        for row in ranking:
            get_strategy(row["strategy"])  # every name is one auto can run
    assert table["n"] >= 20 and table["command"].startswith("scenewright bench auto-table")


def test_a_model_without_its_own_table_uses_the_embedded_default_s() -> None:
    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))
    assert backend.auto_table == {}
    assert table_for(backend) == json.loads((EMBEDDED_MODEL_DIR / AUTO_TABLE_FILE).read_text())


def test_a_malformed_table_is_refused_when_the_model_loads(tmp_path: Path) -> None:
    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))
    backend.save_pretrained(tmp_path)
    (tmp_path / AUTO_TABLE_FILE).write_text('{"ranking": []}')
    with pytest.raises(BackendError, match=r"auto_table\.json has no 'kinds'"):
        TinyBackend.from_pretrained(tmp_path)
    (tmp_path / AUTO_TABLE_FILE).write_text("{")
    with pytest.raises(BackendError, match="not valid JSON"):
        TinyBackend.from_pretrained(tmp_path)
    (tmp_path / AUTO_TABLE_FILE).write_text(json.dumps(TABLE))
    assert TinyBackend.from_pretrained(tmp_path).auto_table == TABLE


def test_auto_runs_its_choice_with_the_model_s_tuned_options() -> None:
    """The choice goes through the registry, so the backend's tuned options apply to it."""
    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))
    backend.auto_table = {
        "measured_on": "toy",
        "kinds": {"single": {"ranking": [{"strategy": "taca", "passed": 1.0, "seconds_per_image": 1.0}]}},
    }
    backend.strategy_defaults = {"taca": {"gamma": 1.7}}
    plan = Plan(prompt="a red circle", objects=[obj("circle")])
    result = run_strategy("auto", backend, plan, SamplingSettings(32, 32, steps=2, guidance=3.0, seed=0))
    assert result.strategy == "auto:taca"
    assert result.report["gamma"] == 1.7
    assert result.report["auto"] == {
        "chose": "taca",
        "why": "best measured for a single plan: passed 100% of single cases on toy",
        "kind": "single",
    }


def test_bench_auto_table_builds_from_a_bench_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = {
        "backend": {"name": "tiny16"},
        "n": 5,
        "seed": 1,
        "sets": ["single", "counting"],
        "summary": {
            "vanilla": {"single": 1.0, "counting": 0.2, "seconds_per_image": 1.0},
            "numina": {"single": 0.8, "counting": 0.6, "seconds_per_image": 2.0},
        },
    }
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(bench))
    out = tmp_path / "table.json"
    assert main(["bench", "auto-table", "--from-json", str(source), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["measured_on"] == "tiny16"
    assert [r["strategy"] for r in table["kinds"]["counting"]["ranking"]] == ["numina", "vanilla"]
    assert "counting: numina (60%)" in capsys.readouterr().out
    assert (
        main(["bench", "auto-table", "--from-json", str(tmp_path / "missing.json"), "--out", str(out)]) != 0
    )


def test_the_recorded_command_leaves_out_where_the_table_went() -> None:
    from scenewright.bench.auto_table import recorded_command

    assert recorded_command(["--backend", "tiny", "--out", "x.json", "--n", "20"]) == (
        "scenewright bench auto-table --backend tiny --n 20"
    )
    assert recorded_command(["--out=x.json"]) == "scenewright bench auto-table"


def test_the_taca_suffix_takes_the_model_s_tuned_taca_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from scenewright.executor import strategies

    made: list[dict[str, float]] = []
    original = strategies.taca_edit

    def recording(**options: float) -> object:
        made.append(options)
        return original(**options)

    monkeypatch.setattr(strategies, "taca_edit", recording)
    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))
    backend.strategy_defaults = {"taca": {"mode": "fraction", "gamma": 1.3, "early_fraction": 0.2}}
    plan = Plan(prompt="a red circle", objects=[obj("circle")])
    run_strategy("regional+taca", backend, plan, SamplingSettings(32, 32, steps=2, guidance=3.0, seed=0))
    assert made[-1] == {"mode": "fraction", "gamma": 1.3, "early_fraction": 0.2}
    backend.strategy_defaults = {}
    run_strategy("regional+taca", backend, plan, SamplingSettings(32, 32, steps=2, guidance=3.0, seed=0))
    assert made[-1] == {}
