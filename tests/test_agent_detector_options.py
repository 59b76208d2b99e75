"""``--detector`` and ``--clip`` on the chat and web faces: the same meaning as ``generate``'s.

A tiny FLUX folder stands in for a real model (so the toy world's exact evaluator is not the
judge) and tiny OWLv2 and CLIP folders for the detector and the colour namer."""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

import pytest

import detection_builders as detectors
from builders import tiny_flux_pipeline
from scenewright.agent import chat, web
from scenewright.agent.options import agent_from_args
from scenewright.cli import main
from scenewright.tools.detection.verify import DetectorVerifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def parse(face: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scenewright")
    face.register(parser.add_subparsers(dest="command"))  # type: ignore[attr-defined]
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved tiny FLUX, OWLv2 and CLIP checkpoints (random weights, no download)."""
    root = tmp_path_factory.mktemp("checkpoints")
    tiny_flux_pipeline().save_pretrained(root / "flux")
    for part in detectors.owlv2():
        part.save_pretrained(root / "owl")
    for part in detectors.clip():
        part.save_pretrained(root / "clip")
    return {name: root / name for name in ("flux", "owl", "clip")}


def fast(folders: dict[str, Path], out: Path) -> list[str]:
    return ["--backend", str(folders["flux"]), "--height", "32", "--width", "32", "--steps", "1",
            "--strategy", "vanilla", "--refine-rounds", "0", "--out", str(out),
            "--detector", str(folders["owl"]), "--clip", str(folders["clip"])]  # fmt: skip


def test_the_agent_built_from_chat_options_verifies_by_the_detector(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    args = parse(chat, ["chat", *fast(folders, tmp_path / "out")])
    agent = agent_from_args(args)
    try:
        assert isinstance(agent.tools.refine_verifier(agent.load_backend()), DetectorVerifier)
        result = agent.run("a red apple")
    finally:
        agent.close()
    assert result.ok and result.verified is not None
    (row,) = result.report
    # The detector's rows: counts, boxes and scores per instance, and CLIP's colour of each.
    assert row["name"] == "apple" and row["color"] == "red" and row["wanted"] == 1
    assert len(row["boxes"]) == len(row["scores"]) == len(row["colors"]) == row["found"]


def test_chat_with_a_detector_reports_its_counts(
    folders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("an apple\n/quit\n"))
    args = parse(chat, ["chat", *fast(folders, tmp_path / "out"), "--quiet"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    # Without a detector a vanilla render on FLUX is "not verified" (no attention rows).
    assert re.search(
        r"rendered with vanilla, seed \d+: (matches|differs from) the plan \[apple \d+/1", out
    ), out


def test_web_takes_the_same_detector_options(folders: dict[str, Path], tmp_path: Path) -> None:
    args = parse(web, ["serve", *fast(folders, tmp_path / "out")])
    assert (args.detector, args.clip) == (str(folders["owl"]), str(folders["clip"]))


@pytest.mark.parametrize(
    ("detector", "clip", "refusal"),
    [
        ("nowhere", None, "detector: .*nowhere does not exist"),
        ("owl", "owl", "clip: .* holds a 'owlv2' model, not a CLIP model"),
        ("owl", "nowhere", "clip: .*nowhere does not exist"),
    ],
)
def test_chat_refuses_a_detector_or_clip_that_is_none_in_one_line_before_rendering(
    detector: str,
    clip: str | None,
    refusal: str,
    folders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def named(key: str) -> str:
        return str(folders.get(key, tmp_path / key))

    monkeypatch.setattr(sys, "stdin", io.StringIO("a red circle\n"))
    argv = ["chat", "--out", str(tmp_path / "o"), "--detector", named(detector)]
    code = main(argv + (["--clip", named(clip)] if clip else []))
    err = capsys.readouterr().err.strip()
    assert code == 2 and re.fullmatch(f"error: {refusal}.*", err), err
    assert not (tmp_path / "o").exists()
