"""Presets over knobs: each backend's tuning is a named preset, listed by ``scenewright
strategies``; removed options are refused with the reason; all of it without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from scenewright.errors import InvalidInputError
from scenewright.executor import catalogue, presets

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


def test_strategies_lists_options_meanings_ranges_and_each_preset_without_torch() -> None:
    done = _run(
        "import sys\n"
        "from scenewright.cli import main\n"
        "code = main(['strategies', 'stitch'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n"
    )
    out = done.stdout
    assert out.strip().endswith("NO-TORCH 0"), done.stderr
    assert out.startswith("stitch: ")
    assert "    cutout_kernel = 5   (1 to 9)   presets: tiny 3, tiny16 3" in out
    assert "    borrow_share = 0   (0 to 1)   presets: tiny16 0.35" in out
    assert "the max-pool kernel that grows each object's cut-out" in out
    assert "  tiny16: tiny16" in out and "  flux: flux-dev, flux-schnell" in out
    assert "sd3.5-medium" in out.split("(none: the defaults above):")[1]
    for key in catalogue.OPTIONS["stitch"]:
        assert f"    {key} = " in out, key
    assert "regional:" not in out  # one strategy asked for


def test_strategies_refuses_an_unknown_name_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from scenewright.cli import main

    assert main(["strategies", "stich"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown strategy 'stich'" in err


def test_the_shipped_presets_are_named_and_hold_only_declared_options() -> None:
    shipped = presets.presets()
    assert list(shipped) == ["chroma", "flux", "flux2", "tiny", "tiny16", "z-image"]
    for family in ("chroma", "flux", "flux2", "z-image"):  # the hub families: regional's shared stream only
        assert shipped[family] == {"regional": {"base_stream": "shared"}}
    for name, tuning in shipped.items():
        for strategy, options in tuning.items():
            if strategy == "maps":  # the attention maps' reading, not a strategy
                continue
            text = ":".join(f"{k}={v}" for k, v in options.items())
            catalogue.parse_options(strategy, text)  # raises on an option the catalogue lacks
            assert strategy.partition("+")[0] in catalogue.OPTIONS, (name, strategy)


def test_every_removed_option_is_refused_with_the_reason() -> None:
    for strategy, removed in catalogue.REMOVED.items():
        for key, reason in removed.items():
            assert key not in catalogue.OPTIONS[strategy]
            with pytest.raises(InvalidInputError) as raised:
                catalogue.check_strategy(f"{strategy}:{key}=1")
            message = str(raised.value)
            assert f"option {key} of '{strategy}' was removed" in message and reason in message
            assert len(message.splitlines()) == 1


def test_a_named_preset_replaces_the_backend_s_own_tuning() -> None:
    from scenewright.executor.regional import render_regional
    from scenewright.executor.stitch import render_stitch
    from scenewright.executor.strategies import resolve_options

    tiny16 = json.loads((presets.MODELS_DIR / "toyworld16" / presets.FILE_NAME).read_text())
    bare = SimpleNamespace(strategy_defaults={})
    own = SimpleNamespace(strategy_defaults=tiny16)
    assert resolve_options(render_stitch, "stitch", bare) == {}
    named = resolve_options(render_stitch, "stitch:preset=tiny16", bare)
    assert named == tiny16["stitch"] == resolve_options(render_stitch, "stitch", own)
    # Options named beside the preset still win; "regional+taca" takes the composition's entry.
    assert resolve_options(render_stitch, "stitch:preset=tiny16:noise_tries=2", bare)["noise_tries"] == 2
    composed = resolve_options(render_regional, "regional+taca:preset=tiny16", bare)
    assert composed == {**tiny16["regional"], **tiny16["regional+taca"]}
    assert resolve_options(render_stitch, "stitch:preset=tiny", own) == tiny16_free(tiny16)
    assert resolve_options(render_stitch, "stitch:mode=paper", own) == {}


def tiny16_free(tiny16: dict[str, dict[str, object]]) -> dict[str, object]:
    """tiny's stitch preset, read from its own file (not tiny16's)."""
    tiny = json.loads((presets.MODELS_DIR / "toyworld" / presets.FILE_NAME).read_text())
    assert tiny["stitch"] != tiny16["stitch"]
    return dict(tiny["stitch"])


def test_the_generated_option_tables_are_current() -> None:
    done = _run(
        "import runpy, sys; sys.argv = ['doc_tables', '--check']; runpy.run_path('scripts/doc_tables.py', run_name='__main__')"
    )
    assert done.returncode == 0, done.stdout + done.stderr
