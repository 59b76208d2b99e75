"""The plan every strategy consumes: a global prompt, objects with boxes, relations.

Boxes are normalised ``[x0, y0, x1, y1]`` in [0, 1], x to the right and y down, one box per
instance. The validators reject what cannot be drawn and name the offending field.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Box = tuple[float, float, float, float]
Relation = Literal["left of", "right of", "above", "below", "on", "under", "next to", "between"]

# The most instances of one object a plan holds: "a dozen" fits; "500 cats" is capped to it with
# a warning. Beyond a dozen, instances get too small to count on a 1-megapixel image.
MAX_COUNT = 12
# The most distinct objects in one plan; further ones are dropped with a warning.
MAX_OBJECTS = 10
# The longest request the planners read; longer ones are refused with a clear error.
MAX_PROMPT_CHARS = 2000
# Bounds on every other text and list of a plan, however it arrives (planner, web editor, /load,
# an LLM): a 12,000-object or 50 MB plan is refused by validation, before any work.
MAX_NAME_CHARS = 80
MAX_TEXT_CHARS = 500
MAX_ATTRIBUTES = 8
MAX_RELATIONS = 4 * MAX_OBJECTS
# LoRAs one object may name, and the scale bounds of each (beyond them a LoRA is noise, not a style).
MAX_OBJECT_LORAS = 4
MAX_LORA_SCALE = 8.0


# What a name of a thing never holds: path parts ("../../etc/passwd"), format placeholders ("%s",
# "{0}"), markup ("<script>"), and control, bidi or zero-width characters (U+202E, U+200B) that
# make a name read differently from what it is.
_PATH_PART = re.compile(r"[/\\]|\.\.")
PLACEHOLDER = re.compile(r"%[-#0+]*\d*(?:\.\d+)?[sdifrxXeEgGcaou%]|[{}<>]")


def name_problem(text: str) -> str | None:
    """Why ``text`` is not a word or words naming a thing, in a few words, or None."""
    odd = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if odd is not None:
        return f"holds the invisible or control character U+{ord(odd):04X}"
    if _PATH_PART.search(text):
        return "holds a path separator"
    found = PLACEHOLDER.search(text)
    if found:
        return f"holds {found.group(0)!r}, a format placeholder or markup, not a word"
    return None


def _a_word(text: str) -> str:
    problem = name_problem(text)
    if problem:
        raise ValueError(f"{text[:40]!r} {problem}; name the thing in words")
    return text


class ObjectLora(BaseModel):
    """A LoRA applied to one object's tokens only: an adapter loaded with ``--lora`` or shipped
    beside the model, by name, at ``scale``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="the adapter's name: a --lora file's stem, or a LoRA shipped with the model",
    )  # fmt: skip
    scale: float = Field(
        default=1.0, ge=-MAX_LORA_SCALE, le=MAX_LORA_SCALE, allow_inf_nan=False,
        description="how strongly the LoRA applies to this object, usually 0.5 to 1.5",
    )  # fmt: skip


class PlanObject(BaseModel):
    """One kind of object: ``count`` instances, each with its own box."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, description="the noun, e.g. 'apple'")
    count: int = Field(default=1, ge=1, le=MAX_COUNT, description=f"instances, 1 to {MAX_COUNT}")
    attributes: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] = Field(
        default_factory=list, max_length=MAX_ATTRIBUTES
    )
    prompt: str = Field(default="", max_length=MAX_TEXT_CHARS, description="regional prompt for one instance")
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_COUNT)
    # Left out of the JSON when empty, so plans without LoRAs read as they always did.
    loras: list[ObjectLora] = Field(
        default_factory=list, max_length=MAX_OBJECT_LORAS, exclude_if=lambda value: not value,
        description="LoRAs for this object only (its boxes and its prompt), e.g. [{'name': 'outline'}]",
    )  # fmt: skip

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return _a_word(value.strip())

    @field_validator("attributes")
    @classmethod
    def _attributes_are_words(cls, values: list[str]) -> list[str]:
        return [_a_word(v) for v in values]

    @field_validator("boxes")
    @classmethod
    def _boxes_drawable(cls, boxes: list[Box]) -> list[Box]:
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
                raise ValueError(f"box {index} {[x0, y0, x1, y1]} leaves [0, 1]")
            if x1 <= x0 or y1 <= y0:
                raise ValueError(f"box {index} {[x0, y0, x1, y1]} is empty (needs x0 < x1 and y0 < y1)")
        return boxes

    @field_validator("loras")
    @classmethod
    def _loras_distinct(cls, loras: list[ObjectLora]) -> list[ObjectLora]:
        names = [lora.name for lora in loras]
        if len(set(names)) != len(names):
            raise ValueError(f"names a LoRA twice ({', '.join(names)}); give each once with its scale")
        return loras

    @model_validator(mode="after")
    def _one_box_per_instance(self) -> PlanObject:
        if self.boxes and len(self.boxes) != self.count:
            raise ValueError(f"count is {self.count} but {len(self.boxes)} boxes were given")
        if not self.prompt:
            self.prompt = " ".join([*self.attributes, self.name])
        return self


class PlanRelation(BaseModel):
    """``objects[subject]`` stands in ``relation`` to ``objects[object]``."""

    model_config = ConfigDict(extra="forbid")

    subject: int = Field(ge=0)
    relation: Relation
    object: int = Field(ge=0)


class Plan(BaseModel):
    """A validated scene plan; its JSON is what ``scenewright plan --json`` prints."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    global_prompt: str = Field(default="", max_length=2 * MAX_PROMPT_CHARS)
    background: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    objects: list[PlanObject] = Field(default_factory=list, max_length=MAX_OBJECTS)
    relations: list[PlanRelation] = Field(default_factory=list, max_length=MAX_RELATIONS)

    @model_validator(mode="after")
    def _check_references(self) -> Plan:
        if not self.prompt.strip():
            raise ValueError("prompt must not be blank")
        if not self.global_prompt:
            self.global_prompt = self.prompt
        for index, rel in enumerate(self.relations):
            for role in ("subject", "object"):
                target = getattr(rel, role)
                if target >= len(self.objects):
                    raise ValueError(
                        f"relations[{index}].{role} = {target} but there are only {len(self.objects)} objects"
                    )
        return self

    @classmethod
    def from_prompt(cls, prompt: str) -> Plan:
        """A plan with no objects: the prompt used as is (what plain sampling needs)."""
        return cls(prompt=prompt, global_prompt=prompt)

    def to_json_dict(self) -> dict[str, object]:
        """The plan in the JSON shape of ``scenewright plan --json`` (boxes as lists)."""
        return self.model_dump(mode="json")


@dataclass
class PlanResult:
    """A plan, which planner made it, and what the user should know (capped counts, fallbacks)."""

    plan: Plan
    planner: str
    warnings: list[str] = field(default_factory=list)


def describe_errors(error: ValidationError) -> list[str]:
    """One line per validation problem, each starting with the field path, e.g. ``objects[0].count``.

    A key that is not a plain name (an unknown key holding a newline, say) is shown quoted and
    escaped, so every problem stays on its one line.
    """
    lines: list[str] = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
                continue
            name = part if part.isidentifier() else json.dumps(part)
            path += f".{name}" if path else name
        message = " ".join(str(item["msg"]).removeprefix("Value error, ").split())
        lines.append(f"{path}: {message}" if path else message)  # plan-level messages name their field
    return lines
