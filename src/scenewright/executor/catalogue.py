"""Every strategy's name and options, without torch: what ``regional:base_ratio=0.2`` may say.

The one place an option is declared: its default (each strategy function's signature reads it
from here), its range or words, what it means, and where it comes from (the authors' paper, our
own method, or tuning for one backend, which that backend's preset sets; see ``presets``). The
registry (``strategies``) parses strategy strings with these declarations, so a bad
``--strategy`` is refused in well under a second by the same code that refuses it before a
render; ``scenewright strategies`` and docs/strategies.md print them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from scenewright.errors import InvalidInputError
from scenewright.executor import presets
from scenewright.executor.options import Bound, Choice, Range

# The words strategy options take; the modules that act on them import them from here.
IMAGE_ATTENTION_MODES = ("region", "context", "all")
BASE_STREAMS = ("separate", "shared")
SCENE_PROMPTS = ("auto", "global", "objects")
GUIDANCE_STEPS = ("model", "all")
POOLED_CHOICES = ("scene", "box", "box_single")
NOISE_SCORES = ("box", "centre")
OBJECT_PASSES = ("auto", "box", "free")
HOLD_IMAGE_ATTENTION = ("same", "region", "context", "all")
BIAS_WORDS = ("noun", "object")
PIPELINES = ("paper", "ours")
VERIFIERS = ("auto", "attention", "evaluator", "detector")
# Regional's inject intervals: more than any model's blocks of one kind (only the first is masked).
MAX_INTERVAL = 64

# Where an option comes from: the authors' method, our own, or tuning measured on one backend
# (an option of that kind is set by the backend's preset, and is rarely worth setting by hand).
PAPER, OURS, TUNING = "paper", "ours", "tuning"
ORIGINS = (PAPER, OURS, TUNING)


@dataclass(frozen=True)
class Option:
    """One ``key=value`` a strategy takes: its default (whose type the value is read as), the
    range or words it may take (None: any value of that type), what it does, and its origin."""

    default: int | float | str
    bound: Bound | None
    meaning: str
    origin: str = PAPER


OPTIONS: dict[str, dict[str, Option]] = {
    "vanilla": {},
    "regional": {
        "base_ratio": Option(0.3, Range(0.0, 1.0), "share of the base prompt's pass blended into the regional pass"),
        "inject_fraction": Option(0.4, Range(0.0, 1.0), "share of the steps that run the region mask"),
        "image_attention": Option(
            "region", Choice(IMAGE_ATTENTION_MODES),
            "what a box's image tokens may read: their own box (`region`, the paper), also the uncovered "
            "canvas one way (`context`), or the whole image with text still bound per box (`all`)", TUNING,
        ),
        "text_boost": Option(
            0.0, Range(0.0, 10.0),
            "added to a box's image-query logits on its own prompt's words (conditional rows only)", TUNING,
        ),
        "open_image_after": Option(
            1.0, Range(0.0, 1.0),
            "from this share of the steps, image tokens attend across boxes while each box's words stay "
            "bound to it; 1 never", TUNING,
        ),
        "guidance_steps": Option(
            "model", Choice(GUIDANCE_STEPS),
            "`all`: classifier-free guidance on every regional step, also where the model's settings skip it",
            TUNING,
        ),
        "region_guidance": Option(
            0.0, Range(0.0, 30.0),
            "a CFG scale of its own for the regional steps; 0 takes the run's `--guidance` (CFG models "
            "only; never turns guidance on)", TUNING,
        ),
        "noise_tries": Option(
            1, Range(1, 16),
            "each box's starting noise picked from this many draws by what the first step predicts there "
            "(this many extra first steps)", TUNING,
        ),
        "pooled": Option(
            "scene", Choice(POOLED_CHOICES),
            "whose pooled text vector modulates a box's tokens: the scene's (the paper), the box's own in "
            "every block, or in the single-stream blocks only (FLUX-class)", TUNING,
        ),
        "pooled_from": Option(
            0.0, Range(0.0, 1.0), "share of the steps after which the boxes take their own pooled vectors", TUNING
        ),
        "recheck_at": Option(
            0.0, Range(0.0, 1.0),
            "at this share of the steps, a box whose predicted clean image is still empty gets a fresh noise "
            "draw and the render starts again; 0 never", TUNING,
        ),
        "recheck_share": Option(
            0.1, Range(0.0, 1.0),
            "a box counts as empty under this share of its tokens standing out from the canvas", TUNING,
        ),
        "recheck_tries": Option(2, Range(0, 8), "how many times the recheck may redraw", TUNING),
        "base_stream": Option(
            "separate", Choice(BASE_STREAMS),
            "the base prompt's image stream in the single-stream blocks: `separate` (the authors': a copy "
            "only the base pass updates) or `shared` (the base pass reads the blended tokens; cheaper, see "
            "parity.md)", OURS,
        ),
        "double_inject_interval": Option(
            1, Range(1, MAX_INTERVAL),
            "the region mask in every n-th double-stream (SD3: joint) block; the blocks between run the "
            "regional pass unmasked with the base blended in (the authors' `double_inject_blocks_interval`)",
        ),
        "single_inject_interval": Option(
            1, Range(1, MAX_INTERVAL),
            "the same for the single-stream blocks (the authors' `single_inject_blocks_interval`)",
        ),
    },
    "taca": {
        # A temperature below 0.5 (gamma above 2) turns outlines cartoonish (TACA's paper), and a
        # gamma at or below 0 inverts attention.
        "gamma": Option(1.2, Range(0.5, 2.0), "the factor on image-query x text-key logits"),
        "early_steps": Option(
            3, Range(0, 1000),
            "gamma on this many first steps, at any step count (the authors' 3); `early_fraction` replaces "
            "it when not negative",
        ),
        "early_fraction": Option(-1.0, Range(-1.0, 1.0), "share of the steps it applies to", TUNING),
    },
    "numina": {
        "reference_fraction": Option(
            0.4, Range(0.05, 1.0),
            "share of the steps the reference pass runs before its attention is read (a later read counts "
            "better and costs more)",
        ),
        "added_strength": Option(0.8, Range(0.0, 20.0), "the bias on an added instance's tokens, times delta(t)"),
        "removed_strength": Option(
            -10.0, Range(-50.0, 0.0), "the bias on a removed instance's tokens, times delta(t)"
        ),
        "bias_words": Option(
            "noun", Choice(BIAS_WORDS),
            "which words take the bias: the noun (the paper) or the noun and its attributes", TUNING,
        ),
        "pipeline": Option(
            "paper", Choice(PIPELINES),
            "`paper`: the authors' head choice, MeanShift + DBSCAN layout and bias; `ours`: our count layout "
            "and tuned bias (the options above apply to it only)", OURS,
        ),
    },
    "stitch": {
        # A negative object_fraction takes the default.
        "object_fraction": Option(
            -1.0, Range(-1.0, 0.95),
            "share of the steps before the switch; negative takes the pass's own (box 0.2, free 0.5)",
        ),
        "keep_mass": Option(
            0.95, Range(0.05, 1.0),
            "box pass: the share of the chosen head's attention mass a cut-out keeps (1 pastes the whole box)",
        ),
        "hold_fraction": Option(
            0.0, Range(0.0, 1.0), "share of the steps after the switch that still bind each object to its prompt",
            OURS,
        ),
        "image_attention": Option(
            "region", Choice(IMAGE_ATTENTION_MODES), "box pass: regional's `image_attention`", TUNING
        ),
        "object_pass": Option(
            "box", Choice(OBJECT_PASSES),
            "`box` (the paper's), `free` (ours) or `auto` (free on grids of 16 tokens a side or fewer)", OURS,
        ),
        "fill": Option(
            0.8, Range(0.05, 1.0), "free pass: the most of its box an object's longer side may take", OURS
        ),
        "finish_prompt": Option(
            "auto", Choice(SCENE_PROMPTS),
            "the finish's prompt: the global prompt, the objects named with their counts, or `auto` (objects "
            "on a model without layout words)", OURS,
        ),
        "text_boost": Option(0.0, Range(0.0, 10.0), "box pass: regional's `text_boost`", TUNING),
        "guidance_steps": Option(
            "model", Choice(GUIDANCE_STEPS),
            "box pass: regional's `guidance_steps` (the object pass is the first steps, which the toy models "
            "leave unguided)", TUNING,
        ),
        "hold_image_attention": Option(
            "same", Choice(HOLD_IMAGE_ATTENTION),
            "image attention during the hold steps: as in the object pass (`same`) or one of regional's", OURS,
        ),
        "noise_tries": Option(1, Range(1, 16), "box pass: regional's `noise_tries`", TUNING),
        "pooled": Option(
            "scene", Choice(POOLED_CHOICES),
            "box pass: regional's `pooled` (the pass's own vector is the background prompt's)", TUNING,
        ),
        "seam_fraction": Option(
            0.0, Range(0.0, 1.0),
            "box pass: the tokens two boxes share, and the border between two touching boxes of one object, "
            "take the background at the switch and keep to its path for this share of the steps, so "
            "neighbours do not grow into one shape", TUNING,
        ),
        "noise_score": Option(
            "box", Choice(NOISE_SCORES),
            "box pass, `noise_tries` > 1: score a box's draw by the whole box, or with its centre counted twice",
            TUNING,
        ),
        "canvas_fraction": Option(
            0.0, Range(0.0, 1.0),
            "box pass: the tokens outside every box keep to the background's path for this share of the "
            "steps, so the finish draws each object in its box or not at all", TUNING,
        ),
        "borrow_share": Option(
            0.0, Range(0.0, 1.0),
            "box pass: a box whose share of drawn tokens at the switch is under this borrows the draft of "
            "the fullest box of the same object (report: `boxes_borrowed`); 0 never", TUNING,
        ),
        "cutout_kernel": Option(
            5, Range(1, 9), "the max-pool kernel that grows each object's cut-out (odd; the paper's 5)"
        ),
    },
    "auto": {},
    "refine": {
        # ``base`` is any registered strategy but refine, checked by the parser.
        "base": Option("auto", None, "the strategy whose image is refined (any but refine)", OURS),
        "rounds": Option(2, Range(0, 10), "at most this many check-and-repaint rounds", OURS),
        "verifier": Option(
            "auto", Choice(VERIFIERS), "who decides which objects fail and whether a round is kept", OURS
        ),
        "repair_fraction": Option(
            0.5, Range(0.05, 1.0),
            "share of the run's steps each repaint takes, on a coarser schedule over the same noise range; "
            "1 repaints with every step", OURS,
        ),
    },
}  # fmt: skip
# What each strategy does, in a line (``scenewright strategies``; docs/strategies.md has the rest).
SUMMARIES: dict[str, str] = {
    "vanilla": "the global prompt with no attention edit: the baseline",
    "regional": "each instance's prompt bound to its box by an attention mask (Regional Prompting, arXiv 2411.02395)",
    "taca": "a higher temperature on image-to-text attention in the early steps (TACA, ICCV 2025)",
    "numina": "counts steered: a reference pass counts instances, a bias adds or removes them (NUMINA)",
    "stitch": "objects drawn apart, cut out, pasted into their boxes, finished together (Stitch, arXiv 2509.26644)",
    "auto": "runs the strategy measured best for this kind of plan on the toy-world benchmark",
    "refine": "renders its base, checks every object, repaints the failures in place (ours)",
}
# Options that existed and were removed because no measurement showed them helping on any
# backend (docs/design-notes.md has the figures): naming one is refused with what runs now.
REMOVED: dict[str, dict[str, str]] = {
    "regional": {
        "base_prompt": "the base pass takes the plan's global prompt (naming the objects lost position, 44% vs 56%)",
    },
    "stitch": {
        "placement": "the free pass always fits each object into its box (moving whole tokens: counting 72% vs 94%)",
        "object_steps": "the free pass's object rows always take 6 steps (the full schedule: same passes at 1.6x the time)",
        "region_guidance": "the box pass takes the run's guidance (a scale of 9: +2 position, -5 counting)",
        "recheck_tries": "empty boxes are not redrawn at the switch (2 redraws: 111 of 150 against 112)",
        "recheck_share": "empty boxes are not redrawn at the switch (2 redraws: 111 of 150 against 112)",
        "seam_between": "the seam always holds touching boxes too (overlaps only: 97 of 150 against 112)",
    },
}
# Strategies whose attention edits TACA can be layered on.
TACA_COMPOSABLE = ("regional", "numina", "stitch")
# ``mode``: whether the backend's tuning applies ("tuned") or only the strategy's own defaults,
# which are its authors' ("paper"). Every strategy takes it; it never reaches the function.
MODES = ("tuned", "paper")
DEFAULT_MODE = "tuned"
# ``preset``: the tuning a backend ships (``presets``) by its name, on any backend; a backend
# takes its own preset unasked. Every strategy takes it; it never reaches the function.
PRESET = "preset"


def defaults(strategy: str) -> SimpleNamespace:
    """The defaults of ``strategy``'s options by name (``defaults("regional").base_ratio``):
    what the strategy function's signature takes."""
    return SimpleNamespace(**{key: option.default for key, option in OPTIONS[strategy].items()})


def strategy_names() -> list[str]:
    return [*OPTIONS, *(f"{name}+taca" for name in TACA_COMPOSABLE)]


def range_text(option: Option) -> str:
    """What values ``option`` takes, in words: "0 to 1", "region | context | all"."""
    bound = option.bound
    if isinstance(bound, Range):
        return f"{bound.low:g} to {bound.high:g}"
    if isinstance(bound, Choice):
        return " | ".join(bound.values)
    return "a strategy name" if isinstance(option.default, str) else f"any {type(option.default).__name__}"


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
    checked against their bounds (``mode`` and ``preset`` included)."""
    strategy = name.partition(":")[0].partition("+")[0]
    declared = OPTIONS.get(strategy, {})
    options: dict[str, Any] = {}
    for item in filter(None, text.split(":")):
        key, equals, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if equals and key == "mode":
            Choice(MODES).check(name, key, value)
            options[key] = value
            continue
        if equals and key == PRESET:
            presets.check(name, value)
            options[key] = value
            continue
        if key in REMOVED.get(strategy, {}):
            raise InvalidInputError(
                "strategy", f"option {key} of '{strategy}' was removed", REMOVED[strategy][key]
            )
        if not equals or key not in declared:
            known = ", ".join(sorted([*declared, "mode", PRESET]))
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
    if options.get("mode") == "paper" and PRESET in options:
        raise InvalidInputError(
            "strategy", f"'{name}' asks for no tuning (mode=paper) and a preset", "drop one of the two"
        )
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
