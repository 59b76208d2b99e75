"""What reaches the terminal: control characters escaped, progress bars on terminals only, and
the whole command's time."""

from __future__ import annotations

import io
import os

import pytest

from scenewright.cli import main
from scenewright.terminal import printable, show_progress


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


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_shown_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    assert show_progress(False, _Stream(tty=True)) is True
    assert show_progress(True, _Stream(tty=True)) is False
    assert show_progress(False, _Stream(tty=False)) is False
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # the libraries' bars are off too


def test_process_seconds_count_from_the_process_start() -> None:
    import subprocess
    import sys

    code = "import time; time.sleep(0.6); from scenewright.terminal import process_seconds; print(process_seconds())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0.6 <= float(done.stdout) < 30  # the sleep before the import is counted
