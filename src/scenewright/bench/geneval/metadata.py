"""GenEval's ``evaluation_metadata.jsonl``: one JSON object a line with a ``tag``, a ``prompt``
and ``include`` clauses (class, count, optional colour, optional position relative to an
earlier clause), optionally ``exclude`` clauses. Checked whole before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError
from scenewright.tools.detection.color_names import COLORS
from scenewright.untrusted import load_json

FIELD = "metadata"
FIX = "give GenEval's evaluation_metadata.jsonl (one JSON object a line with tag, prompt and include)"
POSITIONS = ("left of", "right of", "above", "below")
MAX_BYTES = 50_000_000
# GenEval's file has 553 prompts; ten thousand is a generous ceiling for any variant of it.
MAX_PROMPTS = 10_000
# GenEval asks for at most 4 of a class; a plan holds at most 12 instances of one object.
MAX_CLAUSE_COUNT = 12


def _bad(path: Path, line: int, problem: str) -> InvalidInputError:
    return InvalidInputError(FIELD, f"{path} line {line}: {problem}", FIX)


def _check_clause(path: Path, line: int, clause: Any, where: str, index: int) -> None:
    if not isinstance(clause, dict):
        raise _bad(path, line, f"{where}[{index}] is not an object")
    if not isinstance(clause.get("class"), str) or not clause["class"].strip():
        raise _bad(path, line, f"{where}[{index}] has no class name")
    count = clause.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CLAUSE_COUNT:
        raise _bad(path, line, f"{where}[{index}].count is not a whole number in 1..{MAX_CLAUSE_COUNT}")
    if "color" in clause and clause["color"] not in COLORS:
        raise _bad(path, line, f"{where}[{index}].color {clause['color']!r} is not one of GenEval's colours")
    if "position" in clause:
        position = clause["position"]
        if (
            not isinstance(position, list)
            or len(position) != 2
            or position[0] not in POSITIONS
            or not isinstance(position[1], int)
            or not 0 <= position[1] < index
        ):
            raise _bad(path, line, f"{where}[{index}].position must be [relation, an earlier clause's index]")


def read_metadata(path: str | Path) -> list[dict[str, Any]]:
    """Every prompt's metadata, in file order; a one-line error naming the first bad line."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(FIELD, f"{file} is not a file", FIX)
    if file.stat().st_size > MAX_BYTES:
        raise InvalidInputError(FIELD, f"{file} is larger than {MAX_BYTES:,} bytes", FIX)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InvalidInputError(FIELD, f"{file} is not UTF-8 text", FIX) from error
    entries: list[dict[str, Any]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            entry = load_json(text, FIELD, FIX)
        except InvalidInputError as error:
            raise _bad(file, number, error.problem) from None
        if not isinstance(entry, dict):
            raise _bad(file, number, "not a JSON object")
        if not isinstance(entry.get("prompt"), str) or not entry["prompt"].strip():
            raise _bad(file, number, "no prompt")
        if not isinstance(entry.get("tag"), str):
            raise _bad(file, number, "no tag")
        include = entry.get("include")
        if not isinstance(include, list) or not include:
            raise _bad(file, number, "no include clauses")
        for index, clause in enumerate(include):
            _check_clause(file, number, clause, "include", index)
        exclude = entry.get("exclude", [])
        if not isinstance(exclude, list):
            raise _bad(file, number, "exclude is not a list")
        for index, clause in enumerate(exclude):
            _check_clause(file, number, {k: v for k, v in clause.items() if k != "position"}
                          if isinstance(clause, dict) else clause, "exclude", index)  # fmt: skip
        entries.append(entry)
    if not entries:
        raise InvalidInputError(FIELD, f"{file} holds no prompts", FIX)
    if len(entries) > MAX_PROMPTS:
        raise InvalidInputError(
            FIELD, f"{file} holds {len(entries):,} prompts (at most {MAX_PROMPTS:,})", FIX
        )
    return entries
