"""The reliability table's runner: each outcome is recognised from a real process."""

from __future__ import annotations

from pathlib import Path

from scenewright.bench.reliability.probes import Probe, all_probes
from scenewright.bench.reliability.run import OUTCOMES, Outcome, classify, run_all, table


def _names_ok(tmp: Path, out: str, err: str) -> str | None:
    return "an object named 'without'" if "without" in out else None


def test_each_outcome_is_told_apart_on_real_processes() -> None:
    probes = [
        Probe(
            "CLI",
            "refused",
            ["scenewright", "generate", "a red circle", "--device", "tpu", "--out", "{tmp}/o"],
        ),
        Probe("CLI", "crashes", ["scenewright.bench.reliability.agent_cases", "no_such_case"]),
        Probe("CLI", "hangs", ["http.server", "0", "--bind", "127.0.0.1"], expect="ok", timeout_s=3),
        Probe(
            "CLI",
            "runs",
            ["json.tool", "{tmp}/p.json"],
            expect="ok",
            setup=lambda tmp: (tmp / "p.json").write_text('{"a": 1}'),
        ),
        Probe(
            "CLI",
            "wrong",
            ["json.tool", "{tmp}/p.json"],
            expect="ok",
            check=_names_ok,
            setup=lambda tmp: (tmp / "p.json").write_text('{"name": "without"}'),
        ),
    ]
    results = run_all(probes, jobs=2, echo=False)
    assert [(r.outcome, r.expected) for r in results] == [
        ("clean error", True),
        ("traceback", False),
        ("hang", False),
        ("ran", True),
        ("silently wrong", False),
    ]
    assert "device" in results[0].detail and "KeyError" in results[1].detail
    page = table(results, "scenewright bench reliability")
    assert "| **all** | 5 | 1 | 1 | 1 | 1 | 1 | 2 |" in page
    assert page.count("(unexpected)") == 3


def test_a_refusal_of_a_case_that_should_run_is_not_counted_as_expected(tmp_path: Path) -> None:
    probe = Probe("chat", "plain", [], expect="ok")
    assert classify(probe, 2, "", "error: steps: 0 is not allowed; use --steps 20", tmp_path)[:2] == (
        "clean error",
        False,
    )
    assert classify(probe, 2, "", "something odd", tmp_path)[0] == "traceback"
    assert classify(Probe("chat", "x", [], expect="error"), 0, "", "", tmp_path)[0] == "silently wrong"


def test_the_catalogue_covers_every_face_with_unique_names() -> None:
    probes = all_probes()
    faces = {p.face for p in probes}
    assert faces == {
        "CLI",
        "chat",
        "Agent API",
        "rerender",
        "batch",
        "eval geneval",
        "plan (rules)",
        "files",
        "web",
    }
    keys = [(p.face, p.name) for p in probes]
    assert len(keys) == len(set(keys)) and len(probes) >= 50
    assert all(p.expect in ("ok", "error", "either") for p in probes)
    assert set(OUTCOMES) == {"ran", "clean error", "traceback", "hang", "silently wrong"}
    assert Outcome.__dataclass_fields__.keys() >= {"probe", "outcome", "expected"}
