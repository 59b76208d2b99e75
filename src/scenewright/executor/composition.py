"""Pieces every compositional strategy shares: region prompts, sequence-concatenated encodings,
and one sampling call with attention edits installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from scenewright.backends.base import Backend, GuidanceMode, PromptEncoding
from scenewright.backends.tokens import WordSpan
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import Edit, attention_engine
from scenewright.executor.catalogue import SCENE_PROMPTS
from scenewright.executor.sampler import SampleResult, SamplerHook, SamplingSettings, sample
from scenewright.planner.plan import Box, Plan, PlanObject


@dataclass(frozen=True)
class Region:
    """One instance of one plan object: the prompt that draws it and the box it must stay in."""

    object_index: int
    prompt: str
    box: Box


def instance_prompt(obj: PlanObject) -> str:
    """The prompt for one instance: "a red circle" (models are trained on such phrases)."""
    text = obj.prompt.strip() or " ".join([*obj.attributes, obj.name])
    first = text.split()[0].lower() if text.split() else ""
    if first in {"a", "an", "the", "one"}:
        return text
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def objects_prompt(plan: Plan) -> str:
    """The plan's objects named with their counts, in order, and its background:
    "three red circles, a blue star and a cat, night sky". No layout words: for a model that never
    learned them, they are filler, and a relation's repeated noun ("the ring") reads as one more."""
    parts = []
    for obj in plan.objects:
        one = instance_prompt(obj)
        if obj.count == 1:
            parts.append(one)
            continue
        words = one.split()[1:]  # drop the article
        text = " ".join(words)
        plural = _inflect().plural_noun(obj.name)
        at = text.lower().rfind(obj.name.lower())
        text = text[:at] + plural + text[at + len(obj.name) :] if at >= 0 else _inflect().plural(text)
        parts.append(f"{_inflect().number_to_words(obj.count)} {text}")
    if not parts:
        return plan.global_prompt
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text}, {plan.background}" if plan.background else text


def scene_prompt(backend: Backend, plan: Plan, choice: str = "auto") -> str:
    """The prompt for the whole image: the plan's global prompt, or its objects named with their
    counts ("objects"); "auto" names the objects for a model that never learned layout words,
    where a relation's words are filler and its repeated noun reads as one more object."""
    if choice not in SCENE_PROMPTS:
        raise InvalidInputError(
            "prompt", f"unknown scene prompt {choice!r}", f"use one of {', '.join(SCENE_PROMPTS)}"
        )
    if choice == "auto":
        choice = "global" if backend.knows_layout_words else "objects"
    return objects_prompt(plan) if choice == "objects" else plan.global_prompt


def plan_regions(plan: Plan) -> list[Region]:
    """One region per planned instance, in plan order; objects without boxes get none."""
    return [
        Region(index, instance_prompt(obj), box)
        for index, obj in enumerate(plan.objects)
        for box in obj.boxes
    ]


def conditional_rows(backend: Backend, settings: SamplingSettings) -> tuple[int, ...]:
    """Batch rows of the conditional branch inside attention: CFG batches are [uncond; cond]."""
    return (1,) if backend.guidance_mode is GuidanceMode.CFG and settings.guidance > 1 else (0,)


def noun_tokens(encoding: PromptEncoding, row: int, name: str) -> list[int]:
    """Token positions of ``name`` in prompt ``row``, in singular or plural ("apple", "apples")."""
    engine = _inflect()
    words = name.split()
    variants = {name, " ".join([*words[:-1], engine.plural_noun(words[-1])])}
    singular = engine.singular_noun(words[-1])
    if singular:
        variants.add(" ".join([*words[:-1], singular]))
    found: set[int] = set()
    for variant in variants:
        found.update(encoding.tokens_for(row, variant))
    return sorted(found)


@lru_cache(maxsize=1)
def _inflect() -> Any:
    import inflect

    return inflect.engine()


def concat_sequence(encoding: PromptEncoding) -> tuple[PromptEncoding, list[tuple[int, int]]]:
    """Put a batch of encodings one after another in the text sequence of a single row.

    Returns the row (pooled vector of the last prompt, which callers make the base prompt) and each
    prompt's [start, end) span; word positions are shifted so ``tokens_for`` still works.
    """
    count, length, width = encoding.embeds.shape
    spans = [(i * length, (i + 1) * length) for i in range(count)]
    words: list[WordSpan] = []
    for i, row in enumerate(encoding.words):
        words.extend(WordSpan(w.word, w.start, w.end, tuple(t + i * length for t in w.tokens)) for w in row)
    joined = PromptEncoding(
        prompts=[" | ".join(encoding.prompts)],
        embeds=encoding.embeds.reshape(1, count * length, width),
        pooled=encoding.pooled[-1:],
        words=[words],
        mask=None if encoding.mask is None else encoding.mask.reshape(1, count * length),
    )
    return joined, spans


def encode_sequence(
    backend: Backend, prompts: Sequence[str], negative_prompt: str
) -> tuple[PromptEncoding, PromptEncoding, list[tuple[int, int]]]:
    """``prompts`` one after another in one text sequence, a same-length unconditional row (the
    negative prompt in every slot, so a CFG batch lines up), and each prompt's span."""
    encoding, spans = concat_sequence(backend.encode_prompts(list(prompts)))
    negative, _ = concat_sequence(backend.encode_prompts([negative_prompt] * len(prompts)))
    return encoding, negative, spans


def sample_with_edits(
    backend: Backend,
    encoding: PromptEncoding,
    settings: SamplingSettings,
    edits: Sequence[Edit],
    *,
    hooks: Sequence[SamplerHook] = (),
    **sample_kwargs: Any,
) -> SampleResult:
    """One sampling call with ``edits`` active in every attention processor, restored after.

    Without edits the transformer's own processors run untouched. ``sample_kwargs`` go to
    :func:`~scenewright.executor.sampler.sample` (negative, latents, start_step, max_steps, ...).
    """
    if not edits:
        return sample(backend, encoding, settings, hooks=hooks, **sample_kwargs)
    with attention_engine(backend, edits) as engine:
        return sample(backend, encoding, settings, hooks=[engine, *hooks], **sample_kwargs)
