"""One loader for JSON that comes from someone else: PNG metadata, plan files, batch and GenEval
lines, LLM answers, web edits.

``json.loads`` recurses once per nesting level, so a list nested a few thousand levels deep
raises ``RecursionError`` (not a ``ValueError``) and takes the face down with it; it also accepts
``NaN`` and ``Infinity`` and any size. :func:`load_json` refuses all of that as one
:class:`~scenewright.errors.InvalidInputError` before parsing: the size is capped, the nesting
depth is measured by a flat scan of brackets outside strings (no recursion, so no depth can
break the check itself), and non-finite numbers are refused while parsing. :func:`parse_seed`
is the one rule for seeds on every face.
"""

from __future__ import annotations

import json
import numbers
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scenewright.errors import InvalidInputError

# A plan is a few kilobytes and nests five levels (plan, objects, object, boxes, box); PNG
# metadata wraps it in one more. A megabyte and 32 levels leave room for any file we write.
MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 32
# torch's generator takes seeds in [0, 2**63).
MAX_SEED = 2**63

Model = TypeVar("Model", bound=BaseModel)


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """The deepest bracket nesting of ``text`` outside strings, counted up to ``limit + 1``
    (the scan stops there: a deeper value is refused whatever its full depth)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(
    text: str | bytes,
    field: str,
    fix: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """The JSON value of ``text``; a one-line :class:`InvalidInputError` for text over
    ``max_bytes``, nested deeper than ``max_depth``, not JSON, not UTF-8, or holding NaN/Infinity."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise InvalidInputError(field, f"is larger than {max_bytes:,} bytes", fix)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(field, "is not UTF-8 text", fix) from None
    if not isinstance(text, str):
        raise InvalidInputError(field, f"{type(text).__name__} is not JSON text", fix)
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInputError(field, f"is larger than {max_bytes:,} bytes", fix)
    if json_depth(text, max_depth) > max_depth:
        raise InvalidInputError(field, f"is nested more than {max_depth} levels deep", fix)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise InvalidInputError(field, f"not valid JSON ({error.msg}, line {error.lineno})", fix) from None
    except (ValueError, RecursionError) as error:  # NaN, an integer of over 4,300 digits
        problem = str(error).splitlines()[0][:120] if isinstance(error, ValueError) else "is too deep"
        raise InvalidInputError(field, f"is not usable JSON ({problem})", fix) from None


def validation_lines(error: ValidationError, limit: int = 3) -> str:
    """The first problems of a pydantic error, ``field: message`` joined on one line."""
    lines = []
    for item in error.errors()[:limit]:
        where = ".".join(str(part) for part in item["loc"])
        message = " ".join(str(item["msg"]).removeprefix("Value error, ").split())
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def load_model(data: Any, model: type[Model], field: str, fix: str) -> Model:
    """``data`` (a loaded JSON value, or JSON text loaded by :func:`load_json`) as ``model``,
    or one line naming the first fields that do not fit."""
    if isinstance(data, str | bytes):
        data = load_json(data, field, fix)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInputError(field, validation_lines(error), fix) from None


def parse_seed(value: object, field: str = "seed") -> int:
    """A seed as an integer in [0, 2**63), the same on every face.

    Integers and decimal digit strings (``"7"``, as a form or a URL gives it) are accepted;
    fractions (``3.9``, ``"1.9"``), booleans and anything else are refused rather than rounded,
    because a seed that silently becomes another seed reproduces another image.
    """
    fix = "use a whole number in [0, 2**63), e.g. 7"
    if isinstance(value, bool):
        raise InvalidInputError(field, f"{value} is not a whole number", fix)
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 20:
            raise InvalidInputError(field, f"{value[:40]!r} is not a whole number", fix)
        value = int(text)
    if isinstance(value, numbers.Integral):
        value = int(value)  # numpy's integers too
    if not isinstance(value, int):
        shown = repr(value)[:40]
        raise InvalidInputError(field, f"{shown} ({type(value).__name__}) is not a whole number", fix)
    if not 0 <= value < MAX_SEED:
        raise InvalidInputError(field, f"{value} is out of range", "use a seed in [0, 2**63)")
    return value
