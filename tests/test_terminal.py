"""Control characters never reach the terminal raw: prompts with them are refused, output escapes them."""

from __future__ import annotations

import pytest

from scenewright.cli import main
from scenewright.terminal import printable


def test_printable_escapes_controls_but_keeps_newlines_tabs_and_unicode() -> None:
    assert printable("a red circle\n\tnext") == "a red circle\n\tnext"
    assert printable("pomme rouge: é, 猫") == "pomme rouge: é, 猫"
    assert printable("\x1b]0;pwned\x07\x1b[2J") == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert printable("zero\u200bwidth") == "zero\\u200bwidth"


@pytest.mark.parametrize("prompt", ["\x1b]0;pwned\x07\x1b[2J", "two \x1b[31mred\x1b[0m circles", "a cat\x00"])
def test_plan_refuses_prompts_with_control_characters_without_echoing_them(
    prompt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", prompt]) == 2
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err + captured.out and "\x07" not in captured.err + captured.out
    assert captured.err.startswith("error: prompt: contains control characters")
