"""``scenewright chat`` fed from stdin: requests, follow-ups and the slash commands."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import pytest

from scenewright.agent import chat

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scenewright")
    chat.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def images(text: str) -> list[str]:
    return re.findall(r"^image: (.+)$", text, flags=re.MULTILINE)


def test_chat_keeps_the_thread_and_handles_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "edited.json"
    script = "\n".join(
        [
            "two red circles left of a blue square",
            "/plan",
            "make it four circles",
            "/seed 5",
            "/strategy taca",
            "/strategy nope",
            "now at night",
            "/undo",
            "/plan",
            f"/load {plan_file}",
            "/help",
            "/quit",
            "a yellow star",  # after /quit: never read
        ]
    )
    plan_file.write_text(
        json.dumps({"prompt": "a green triangle", "objects": [{"name": "triangle", "count": 0}]})
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(script + "\n"))
    args = parse(
        [
            "chat",
            "--steps",
            "1",
            "--strategy",
            "vanilla",
            "--refine-rounds",
            "0",
            "--out",
            str(tmp_path / "out"),
            "--history",
            str(tmp_path / "h.sqlite"),
        ]
    )
    code = args.handler(args)
    out = capsys.readouterr().out

    written = images(out)
    assert len(written) == 4  # three renders, then /undo shows the second image again
    assert all(Path(p).is_file() for p in written)
    assert written[3] == written[1]
    assert "edited the previous plan (circle: count 2 -> 4)" in out
    assert "seed 5 from the next image on" in out and "rendered with taca, seed 5" in out
    assert "error: strategy: unknown strategy 'nope'" in out
    plans = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", out, flags=re.MULTILINE | re.DOTALL)]
    assert plans[0]["objects"][0]["count"] == 2 and plans[1]["objects"][0]["count"] == 4
    assert plans[1]["background"] is None  # /undo went back before "now at night"
    assert "error: objects[0].count" in out and "kept the last good image" in out
    assert "/strategy NAME" in out and "yellow star" not in out
    assert code == 0  # /quit leaves cleanly, even after the invalid plan file's error


def test_chat_review_lets_me_paste_an_edited_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = {
        "prompt": "a yellow circle",
        "objects": [{"name": "circle", "attributes": ["yellow"], "boxes": [[0.1, 0.1, 0.5, 0.5]]}],
    }
    pasted = json.dumps(edited, indent=2)  # several lines, read until the JSON is whole
    script = f"a red circle\n{pasted}\na blue square\n\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    args = parse(
        [
            "chat",
            "--steps",
            "1",
            "--review",
            "--quiet",
            "--strategy",
            "vanilla",
            "--refine-rounds",
            "0",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert out.count("plan ready for review") == 2
    written = images(out)
    assert len(written) == 2
    from scenewright.tools.output import read_png_metadata

    assert read_png_metadata(written[0])["plan"]["objects"][0]["attributes"] == ["yellow"]
    assert read_png_metadata(written[1])["plan"]["objects"][0]["name"] == "square"


def test_chat_refuses_endless_or_huge_files_and_seeds_and_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"prompt": "' + "x" * 1_100_000 + '"}')
    script = "\n".join(["/load /dev/zero", f"/load {big}", f"/load {tmp_path}", f"/seed {2**64}"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(script + "\n"))
    args = parse(["chat", "--steps", "1", "--out", str(tmp_path / "out")])
    code = args.handler(args)
    out = capsys.readouterr().out
    assert "error: load: /dev/zero is not a regular file" in out
    assert f"error: load: {big} is larger than 1,000,000 bytes" in out
    assert f"error: load: {tmp_path} is not a regular file" in out
    assert "error: seed:" in out and "2**63" in out
    assert code == 2 and images(out) == []  # a script that ends with failures says so


def test_chat_command_errors_are_one_line_and_seed_minus_one_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "/seed banana\n/seed 1.5\n/seed\n/strategy nope\n/seed -1\n/quit\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    args = parse(["chat", "--steps", "1", "--out", str(tmp_path / "out"), "--seed", "-1"])
    code = args.handler(args)
    out = capsys.readouterr().out
    assert re.match(r"seed \d+ \(drawn for --seed -1; --seed \d+ gives it again\)\n", out)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert (
        errors[0]
        == "error: seed: 'banana' is not a whole number; type e.g. /seed 7, or /seed -1 for a random one"
    )
    assert errors[1].startswith("error: seed: '1.5' is not a whole number") and "nothing" in errors[2]
    assert "invalid literal" not in out and "Traceback" not in out
    named = errors[3].partition("use one of ")[2].split(", ")
    assert "auto" in named and len(named) == len(set(named))  # each strategy named once
    drawn = re.search(r"^seed (\d+) \(drawn at random\) from the next image on$", out, flags=re.MULTILINE)
    assert drawn is not None and 0 <= int(drawn.group(1)) < 2**32
    assert code == 0  # /quit after errors


def test_chat_review_never_traps_the_user_in_a_broken_paste(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "a red circle\n{ not json\n/cancel\na blue square\n\n/quit\na green star\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    args = parse(["chat", "--steps", "1", "--review", "--quiet", "--strategy", "vanilla", "--refine-rounds", "0",
                  "--out", str(tmp_path / "out")])  # fmt: skip
    args.handler(args)
    out = capsys.readouterr().out
    assert "plan discarded" in out
    written = images(out)
    assert len(written) == 1  # the square, after the cancelled paste; nothing after /quit
    from scenewright.tools.output import read_png_metadata

    assert read_png_metadata(written[0])["plan"]["objects"][0]["name"] == "square"
    assert "star" not in out


def test_chat_answers_edits_it_cannot_make_with_help_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "make it bigger\n/help\ntwo red circles left of a blue square\nmake it fancier\n/help\n/quit\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    args = parse(["chat", "--steps", "1", "--quiet", "--strategy", "vanilla", "--refine-rounds", "0",
                  "--out", str(tmp_path / "out")])  # fmt: skip
    code = args.handler(args)
    out = capsys.readouterr().out
    assert code == 0  # help is an answer, not a failure
    assert "'make it bigger': it reads as a change to a picture, and there is no picture yet" in out
    assert "'fancier' is not an edit I can make" in out and "error:" not in out
    assert len(images(out)) == 1  # only the scene was rendered; nothing named "make" or "fancier"
    # /help lists the follow-ups that work: on the example scene first, then on this one.
    assert 'follow-ups that work on "three red circles left of a blue square' in out
    assert "follow-ups that work on this scene:\n  make it three circles\n  make the circles bigger" in out
    assert out.count("  remove the square") >= 2  # fancier's answer and the second /help
