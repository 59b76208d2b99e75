"""Every strategy's name and options, without torch: what ``regional:base_ratio=0.2`` may say.

The registry (``strategies``) parses strategy strings with these declarations, and each strategy
module reads its bounds and option words from here, so a bad ``--strategy`` is refused in well
under a second by the same code that refuses it before a render. Each default is the one in the
strategy function's signature (a test holds the two equal); see each module for what an option does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scenewright.errors import InvalidInputError
from scenewright.executor.options import Bound, Choice, Range

# The words strategy options take; the modules that act on them import them from here.
IMAGE_ATTENTION_MODES = ("region", "context", "all")
BASE_STREAMS = ("separate", "shared")
SCENE_PROMPTS = ("auto", "global", "objects")
GUIDANCE_STEPS = ("model", "all")
POOLED_CHOICES = ("scene", "box", "box_single")
NOISE_SCORES = ("box", "centre")
SEAM_BETWEEN = ("overlap", "touching")
PLACEMENTS = ("fit", "token")
OBJECT_PASSES = ("auto", "box", "free")
HOLD_IMAGE_ATTENTION = ("same", "region", "context", "all")
BIAS_WORDS = ("noun", "object")
PIPELINES = ("paper", "ours")
VERIFIERS = ("auto", "attention", "evaluator", "detector")
# Regional's inject intervals: more than any model's blocks of one kind (only the first is masked).
MAX_INTERVAL = 64


@dataclass(frozen=True)
class Option:
    """One ``key=value`` a strategy takes: its default (whose type the value is read as) and the
    range or words it may take (None: any value of that type)."""

    default: int | float | str
    bound: Bound | None = None


OPTIONS: dict[str, dict[str, Option]] = {
    "vanilla": {},
    "regional": {
        "base_ratio": Option(0.3, Range(0.0, 1.0)),
        "inject_fraction": Option(0.4, Range(0.0, 1.0)),
        "image_attention": Option("region", Choice(IMAGE_ATTENTION_MODES)),
        "text_boost": Option(0.0, Range(0.0, 10.0)),
        "base_prompt": Option("global", Choice(SCENE_PROMPTS)),
        "open_image_after": Option(1.0, Range(0.0, 1.0)),
        "guidance_steps": Option("model", Choice(GUIDANCE_STEPS)),
        "region_guidance": Option(0.0, Range(0.0, 30.0)),
        "noise_tries": Option(1, Range(1, 16)),
        "pooled": Option("scene", Choice(POOLED_CHOICES)),
        "pooled_from": Option(0.0, Range(0.0, 1.0)),
        "recheck_at": Option(0.0, Range(0.0, 1.0)),
        "recheck_share": Option(0.1, Range(0.0, 1.0)),
        "recheck_tries": Option(2, Range(0, 8)),
        "base_stream": Option("separate", Choice(BASE_STREAMS)),
        "double_inject_interval": Option(1, Range(1, MAX_INTERVAL)),
        "single_inject_interval": Option(1, Range(1, MAX_INTERVAL)),
    },
    "taca": {
        # A temperature below 0.5 (gamma above 2) turns outlines cartoonish (TACA's paper), and a
        # gamma at or below 0 inverts attention.
        "gamma": Option(1.2, Range(0.5, 2.0)),
        "early_steps": Option(3, Range(0, 1000)),
        "early_fraction": Option(-1.0, Range(-1.0, 1.0)),
    },
    "numina": {
        "reference_fraction": Option(0.4, Range(0.05, 1.0)),
        "added_strength": Option(0.8, Range(0.0, 20.0)),
        "removed_strength": Option(-10.0, Range(-50.0, 0.0)),
        "bias_words": Option("noun", Choice(BIAS_WORDS)),
        "pipeline": Option("paper", Choice(PIPELINES)),
    },
    "stitch": {
        # A negative object_fraction or object_steps takes the default.
        "object_fraction": Option(-1.0, Range(-1.0, 0.95)),
        "keep_mass": Option(0.95, Range(0.05, 1.0)),
        "hold_fraction": Option(0.0, Range(0.0, 1.0)),
        "image_attention": Option("region", Choice(IMAGE_ATTENTION_MODES)),
        "object_pass": Option("box", Choice(OBJECT_PASSES)),
        "placement": Option("fit", Choice(PLACEMENTS)),
        "fill": Option(0.8, Range(0.05, 1.0)),
        "finish_prompt": Option("auto", Choice(SCENE_PROMPTS)),
        "object_steps": Option(-1, Range(-1, 1000)),
        "text_boost": Option(0.0, Range(0.0, 10.0)),
        "guidance_steps": Option("model", Choice(GUIDANCE_STEPS)),
        "hold_image_attention": Option("same", Choice(HOLD_IMAGE_ATTENTION)),
        "region_guidance": Option(0.0, Range(0.0, 30.0)),
        "noise_tries": Option(1, Range(1, 16)),
        "pooled": Option("scene", Choice(POOLED_CHOICES)),
        "recheck_tries": Option(0, Range(0, 8)),
        "recheck_share": Option(0.1, Range(0.0, 1.0)),
        "seam_fraction": Option(0.0, Range(0.0, 1.0)),
        "seam_between": Option("touching", Choice(SEAM_BETWEEN)),
        "noise_score": Option("box", Choice(NOISE_SCORES)),
        "canvas_fraction": Option(0.0, Range(0.0, 1.0)),
        "borrow_share": Option(0.0, Range(0.0, 1.0)),
        "cutout_kernel": Option(5, Range(1, 9)),
    },
    "auto": {},
    "refine": {
        # ``base`` is any registered strategy but refine, checked by the parser.
        "base": Option("auto"),
        "rounds": Option(2, Range(0, 10)),
        "verifier": Option("auto", Choice(VERIFIERS)),
        "repair_fraction": Option(0.5, Range(0.05, 1.0)),
    },
}
# Strategies whose attention edits TACA can be layered on.
TACA_COMPOSABLE = ("regional", "numina", "stitch")
# ``mode``: whether the backend's tuning applies ("tuned") or only the strategy's own defaults,
# which are its authors' ("paper"). Every strategy takes it; it never reaches the function.
MODES = ("tuned", "paper")
DEFAULT_MODE = "tuned"


def strategy_names() -> list[str]:
    return [*OPTIONS, *(f"{name}+taca" for name in TACA_COMPOSABLE)]


def bounds(strategy: str) -> dict[str, Bound]:
    """The ranges and words of ``strategy``'s options (those that have one)."""
    return {key: option.bound for key, option in OPTIONS[strategy].items() if option.bound is not None}


def check_name(name: str) -> str:
    """The strategy ``name`` runs (``regional`` for ``regional+taca:base_ratio=0.2``), or one line
    when there is none by that name."""
    base, _, extra = name.partition(":")[0].partition("+")
    if base not in OPTIONS or extra not in ("", "taca") or (extra and base not in TACA_COMPOSABLE):
        raise InvalidInputError(
            "strategy", f"unknown strategy '{name}'", f"use one of {', '.join(strategy_names())}"
        )
    return base


def parse_options(name: str, text: str) -> dict[str, Any]:
    """``key=value:key=value`` as the options of strategy ``name``, typed like their defaults and
    checked against their bounds (``mode`` included)."""
    declared = OPTIONS.get(name.partition(":")[0].partition("+")[0], {})
    options: dict[str, Any] = {}
    for item in filter(None, text.split(":")):
        key, equals, value = item.partition("=")
        key = key.strip()
        if equals and key == "mode":
            Choice(MODES).check(name, key, value.strip())
            options[key] = value.strip()
            continue
        if not equals or key not in declared:
            known = ", ".join(sorted([*declared, "mode"]))
            raise InvalidInputError(
                "strategy", f"'{name}' has no option '{item}'", f"options of this strategy: {known}"
            )
        default = declared[key].default
        try:
            options[key] = type(default)(value)
        except ValueError as error:
            raise InvalidInputError(
                "strategy",
                f"option {key} of '{name}' is not a {type(default).__name__}: {value!r}",
                f"e.g. {key}={default}",
            ) from error
        bound = declared[key].bound
        if bound is not None:
            bound.check(name, key, options[key])
    if "base" in options:  # refine's base: any registered strategy but refine itself
        base = str(options["base"])
        if base.partition(":")[0].partition("+")[0] == "refine":
            raise InvalidInputError(
                "strategy", "refine cannot refine its own output", "use base=auto or base=stitch"
            )
        check_name(base)
    return options


def check_strategy(name: str) -> None:
    """Refuse, in one line and without torch, a strategy string that names no strategy or gives
    an option it does not take or a value outside its range."""
    check_name(name)
    parse_options(name, name.partition(":")[2])
