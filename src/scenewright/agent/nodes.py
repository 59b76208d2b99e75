"""The agent's nodes: plain functions from state to a state update.

Resources a node needs (the backend, the planner, the output folder, the verifier) come from a
:class:`Toolbox` the graph builder binds in, so the nodes stay testable one by one and the state
holds only JSON. Progress goes out through LangGraph's custom stream as :data:`Event` dicts.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from langgraph.config import get_stream_writer
from langgraph.types import interrupt
from PIL import Image
from pydantic import ValidationError

from scenewright import __version__
from scenewright.agent.edit_help import first_turn_edit
from scenewright.agent.followup import apply_edit, describe, new_scene_answer, parse_edit
from scenewright.agent.state import AgentState, Turn
from scenewright.backends.base import Backend
from scenewright.errors import InvalidInputError, RenderCancelled, ScenewrightError, UnsupportedEditError
from scenewright.executor.memory import is_out_of_memory, memory_error, release_cached_memory
from scenewright.executor.sampler import CancelCheck, SamplerHook, SamplingSettings, StepContext
from scenewright.executor.strategies import STRATEGIES, get_strategy, model_options, parse_options
from scenewright.executor.vanilla import RenderResult
from scenewright.planner.plan import Plan, PlanResult, describe_errors
from scenewright.planner.repair import repair_plan
from scenewright.planner.scene_commands import scene_command
from scenewright.planner.unknown_words import unknown_word_notes
from scenewright.tools.output import save_json, save_png, staged_folder, write_together
from scenewright.tools.overlay import write_attention_sheet, write_overlay
from scenewright.untrusted import load_json

if TYPE_CHECKING:
    from scenewright.tools.detection.verify import DetectorVerifier
    from scenewright.tools.segment import Segmenter

Event = dict[str, Any]
PlannerFn = Callable[[str, int], PlanResult]
# A verifier judges an image against its plan: per-object rows and an overall verdict (None when
# it cannot tell). The toy world's exact judge is one; attention-map checks will be another.
Verifier = Callable[[Image.Image, Plan, Mapping[str, Any]], tuple[list[dict[str, Any]], bool | None]]


def no_segmenter() -> Segmenter | None:
    """The default: refine masks objects with their attention maps."""
    return None


def never_cancelled(_thread: str) -> bool:
    """The default: nothing cancels a render."""
    return False


def default_refine_verifier(backend: Backend) -> str:
    """Refine's own choice for ``backend`` (see :func:`~scenewright.executor.refine.resolve_verifier`),
    named here so the agent's record says which verifier refine used."""
    from scenewright.executor.refine import resolve_verifier

    return resolve_verifier("auto", backend)


@dataclass
class Toolbox:
    """What the nodes use besides the state; owned by the :class:`~scenewright.agent.Agent`."""

    planner: PlannerFn
    backend: Callable[[], Backend]
    verifier: Verifier
    out_dir: Path
    max_refine_rounds: int = 1  # passes of the refine strategy, which has its own inner rounds
    flat: bool = False  # write into out_dir itself (``generate``), not out_dir/<thread>/turn-NNN
    overwrite: bool = False  # replace existing files (only ever asked for by ``generate --overwrite``)
    strategies: Mapping[str, Callable[..., RenderResult]] = field(default_factory=lambda: STRATEGIES)
    # Called (once per strategy run that takes a ``segmenter``, i.e. refine) for the SAM that draws
    # refine's masks; loading is the caller's business, so weights load only when refine runs.
    segmenter: Callable[[], Segmenter | None] = no_segmenter
    # Which of refine's verifiers ("attention", "evaluator", or a detector) decides its rounds,
    # given the backend.
    refine_verifier: Callable[[Backend], str | DetectorVerifier] = default_refine_verifier
    # Whether the user cancelled the running turn of a thread (Ctrl-C, the web's cancel button):
    # the sampler asks before every step.
    cancelled: Callable[[str], bool] = never_cancelled


# ------------------------------------------------------------------------------------ events
def emit(node: str, step: int = 0, steps: int = 1, message: str = "") -> None:
    """Send one progress event on the custom stream (a no-op outside a streaming run)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run (unit tests of a node)
        return
    percent = round(100.0 * step / steps, 1) if steps else 100.0
    writer({"node": node, "step": step, "steps": steps, "percent": percent, "message": message})


class ProgressHook(SamplerHook):
    """Streams one event per denoising step, so the faces can draw a progress bar.

    ``steps`` is the render's own step count: a strategy's side pass on another schedule (Stitch's
    object rows take 12 coarser steps of a 20-step image) is named as such, never as "step 2/12"
    of an image the user asked 20 steps for."""

    needs_model_batch = False  # acts between steps only

    def __init__(self, label: str, steps: int | None = None) -> None:
        self.label = label
        self.steps = steps

    def before_step(self, ctx: StepContext) -> None:
        emit("execute", ctx.step, ctx.num_steps, progress_message(self.label, ctx, self.steps))


def progress_message(label: str, ctx: StepContext, steps: int | None) -> str:
    """The progress line of one step: "auto: step 3/20", or a side pass named with its own count."""
    if steps is None or ctx.num_steps == steps:
        return f"{label}: step {ctx.step + 1}/{ctx.num_steps}"
    return f"{label}: side pass, step {ctx.step + 1} of its {ctx.num_steps} (the image takes {steps} steps)"


# ------------------------------------------------------------------------------------- nodes
def plan_node(state: AgentState, tools: Toolbox) -> dict[str, Any]:
    """Propose a plan: the user's own, an edit of the previous plan, or a fresh one from the planner."""
    emit("plan", 0, 1, "planning")
    turn = int(state.get("turn", 0)) + 1
    seed = int(state.get("seed", 0))
    update: dict[str, Any] = {"turn": turn, "seed": seed}
    edited = state.get("edited_plan")
    if edited is not None:
        return {**update, "candidate": edited, "plan_source": "user", "reference": state.get("plan")}
    request = state.get("request", "").strip()
    previous = state.get("plan")
    command = scene_command(request) if request else None
    if command is not None:  # "start over", "new: two blue hearts": the old plan is left behind
        if not command.request:
            return help_update({**update, "plan": {}}, new_scene_answer())
        request, previous = command.request, None
    if previous and request:
        try:
            base = Plan.model_validate(previous)
        except ValidationError:
            base = None
        edit = parse_edit(request, base) if base is not None else None
        if edit is not None and base is not None:
            try:
                outcome = apply_edit(base, edit, seed)
            except UnsupportedEditError as error:  # before ValueError: it is one, but answered as help
                return help_update(update, error)
            except InvalidInputError as error:
                return {**update, "status": "invalid", "errors": [str(error)]}
            except ValueError as error:
                return {**update, "status": "invalid", "errors": [f"request: {error}"]}
            if outcome.unchanged and _same_render(state, seed):  # it would draw the same image again
                return help_update(update, unchanged_edit(outcome.summary))
            if outcome.unchanged:
                notes = [f"{outcome.summary}; rendered it again with seed {seed}"]
            else:
                notes = [f"edited the previous plan ({outcome.summary}); same seed {seed}", *outcome.notes]
            return {**update, "candidate": outcome.plan, "plan_source": "edit", "notes": notes}
    if not previous and (refusal := first_turn_edit(request)) is not None:
        return help_update(update, refusal)  # "make it bigger" with nothing to make bigger
    try:
        result = tools.planner(request, seed)
    except ScenewrightError as error:
        return {**update, "status": "invalid", "errors": [str(error)]}
    emit("plan", 1, 1, f"planned by {result.planner}")
    return {
        **update,
        "candidate": result.plan.to_json_dict(),
        "plan_source": result.planner,
        "notes": [*state.get("notes", []), *result.warnings],
    }


def _same_render(state: AgentState, seed: int) -> bool:
    """Whether the last turn rendered with this seed and the strategy asked for now (auto picks
    the same strategy for the same plan), so the same plan would give the same image."""
    history = state.get("history") or []
    if not history:
        return False
    last = history[-1]
    asked = state.get("strategy") or "auto"
    return int(last.get("seed", -1)) == seed and asked in ("auto", last.get("strategy"))


def unchanged_edit(already: str) -> UnsupportedEditError:
    """The answer to an edit that leaves the plan as it is: what already holds, nothing rendered."""
    return UnsupportedEditError(
        f"{already}, so nothing changed and nothing was rendered", "try another change; the last image stays"
    )


def help_update(update: dict[str, Any], error: UnsupportedEditError) -> dict[str, Any]:
    """A turn answered with what the follow-up parser can do: status "help" (the faces show it as
    help, not as a failure); the one-line answer is the turn's error, so nothing is rendered."""
    emit("plan", 1, 1, "answered with help")
    # The answer is the turn's note (what every face shows) and its error (so nothing renders).
    return {**update, "status": "help", "errors": [str(error)], "notes": [str(error)]}


def review_node(state: AgentState) -> dict[str, Any]:
    """Pause for a person to edit the plan when asked to; their answer replaces the candidate."""
    if not state.get("review"):
        return {}
    answer = interrupt({"plan": state.get("candidate"), "notes": state.get("notes", [])})
    if answer is None or answer is True or answer in ("", "ok", "accept"):
        return {}
    if isinstance(answer, str):
        try:
            answer = load_json(answer, "plan", "write one JSON object with prompt and objects")
        except InvalidInputError as error:
            return {"status": "invalid", "errors": [str(error)]}
    if isinstance(answer, dict) and isinstance(answer.get("plan"), dict):
        answer = answer["plan"]
    return {"candidate": answer, "plan_source": "user", "reference": state.get("candidate")}


def validate_node(state: AgentState) -> dict[str, Any]:
    """Check the candidate against the schema; errors name their field and nothing is rendered.

    A person's plan is not silently rewritten: only missing boxes are filled in by the layout
    engine. Plans from the planners are already valid; edits may need a re-pack of new objects.
    """
    emit("validate", 0, 1, "validating the plan")
    data = state.get("candidate")
    if not isinstance(data, dict):
        return {"status": "invalid", "errors": ["plan: must be a JSON object with prompt and objects"]}
    try:
        plan = Plan.model_validate(data)
    except ValidationError as error:
        return {"status": "invalid", "errors": describe_errors(error)}
    if not plan.objects:  # nothing to place, check or refine: a planner's plan never looks like this
        return {
            "status": "invalid",
            "errors": ['objects: is empty; add at least one, e.g. {"name": "circle", "count": 1}'],
        }
    notes = list(state.get("notes", []))
    reference = state.get("reference")
    if state.get("plan_source") == "user" and isinstance(reference, dict):
        plan, synced = sync_prompts(plan, reference)
        notes.extend(synced)
    if any(not o.boxes for o in plan.objects):
        try:
            plan, changes = repair_plan(plan.to_json_dict(), plan.prompt, int(state.get("seed", 0)))
        except (ValidationError, ValueError) as error:  # pragma: no cover - a valid plan repairs
            return {"status": "invalid", "errors": [f"plan: {error}"]}
        notes.extend(f"layout: {change}" for change in changes)
    return {"plan": plan.to_json_dict(), "candidate": None, "notes": notes}


def sync_prompts(plan: Plan, reference: dict[str, Any]) -> tuple[Plan, list[str]]:
    """Keep a hand-edited plan's text in step with its edited fields.

    Someone who turns the square yellow in the JSON rarely rewrites the prompts too; left alone,
    the global prompt (what vanilla renders) and the object's regional prompt would still say
    "blue". Prompts the person did change are kept as they wrote them.
    """
    notes: list[str] = []
    data: dict[str, Any] = plan.model_dump(mode="json")
    old_objects = reference.get("objects") or []
    objects: list[dict[str, Any]] = data["objects"]
    for index, obj in enumerate(objects):
        old = (
            old_objects[index] if index < len(old_objects) and isinstance(old_objects[index], dict) else None
        )
        if old is None or obj["prompt"] != old.get("prompt"):
            continue
        if (obj["name"], obj["attributes"]) != (old.get("name"), old.get("attributes")):
            obj["prompt"] = " ".join([*obj["attributes"], obj["name"]])
            notes.append(f"objects[{index}].prompt: now '{obj['prompt']}' to match the edited object")

    def scene(d: dict[str, Any]) -> Any:
        objects = [
            (o.get("name"), o.get("count"), o.get("attributes"))
            for o in d.get("objects") or []
            if isinstance(o, dict)
        ]
        return objects, d.get("relations"), d.get("background")

    if data["global_prompt"] == reference.get("global_prompt") and scene(data) != scene(reference):
        data["global_prompt"] = describe(data)
        notes.append(f"global_prompt: now '{data['global_prompt']}' to match the edited plan")
    return (Plan.model_validate(data), notes) if notes else (plan, notes)


def choose_strategy(requested: str, plan: Plan, available: Mapping[str, Any]) -> tuple[str, str]:
    """A registered strategy for this plan, and why. Unknown or unregistered names fall back to
    vanilla; "auto" defers to an ``auto`` strategy when one is registered, else picks by plan."""
    requested = (requested or "auto").strip()
    if requested != "auto":
        if requested.partition(":")[0] in available:  # options after a colon: "stitch:fill=0.7"
            return requested, "asked for"
        return "vanilla", f"'{requested}' is not available (have: {', '.join(available)}); used vanilla"
    if "auto" in available:
        return "auto", "the auto strategy picks per plan"
    counted = any(o.count > 1 for o in plan.objects)
    boxed = len(plan.objects) > 1 and all(o.boxes for o in plan.objects)
    for name, why, wanted in (
        ("numina", "the plan has counts above one", counted),
        ("stitch", "the plan has several objects with boxes", boxed),
        ("regional", "the plan has several objects with boxes", boxed),
    ):
        if wanted and name in available:
            return name, why
    return "vanilla", "no layout strategy fits better among those registered"


def route_node(state: AgentState, tools: Toolbox) -> dict[str, Any]:
    """Pick the strategy for this plan among those registered now."""
    plan = Plan.model_validate(state["plan"])
    available = dict.fromkeys(available_strategies(tools))
    name, reason = choose_strategy(state.get("strategy", "auto"), plan, available)
    emit("route", 1, 1, f"strategy {name}: {reason}")
    notes = list(state.get("notes", []))
    if "not available" in reason:
        notes.append(f"strategy {reason}")
    return {"strategy_used": name, "route_reason": reason, "notes": notes}


def _settings(state: AgentState, backend: Backend) -> SamplingSettings:
    chosen = state.get("settings") or {}
    defaults = backend.defaults
    guidance = chosen.get("guidance")
    return SamplingSettings(
        height=int(chosen.get("height") or defaults.height),
        width=int(chosen.get("width") or defaults.width),
        steps=int(chosen.get("steps") or defaults.steps),
        guidance=defaults.guidance if guidance is None else float(guidance),
        seed=int(state.get("seed", 0)),
        negative_prompt=str(chosen.get("negative_prompt") or ""),
    )


def _finite(result: RenderResult) -> bool:
    tensor = result.sample.images if result.sample.images.numel() else result.sample.latents
    return bool(torch.isfinite(tensor).all())


def _jsonable(value: Any) -> Any:
    """The JSON-safe part of a strategy report (tensors and arrays are dropped)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, item in value.items() if (v := _jsonable(item)) is not _DROP}
    if isinstance(value, list | tuple):
        return [v for item in value if (v := _jsonable(item)) is not _DROP]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return _DROP


_DROP = object()


def _turn_dir(tools: Toolbox, thread: str, turn: int, refine_round: int) -> Path:
    if tools.flat:
        return tools.out_dir / f"refine{refine_round}" if refine_round else tools.out_dir
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in thread) or "thread"
    base = tools.out_dir / safe / (f"turn-{turn:03d}" + (f"-refine{refine_round}" if refine_round else ""))
    candidate, k = base, 1
    while candidate.exists():  # a folder left by another process: never write into it
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def available_strategies(tools: Toolbox) -> list[str]:
    """Registered names, plus composite ones (``regional+taca``) the registry can build."""
    from scenewright.executor import strategies as registry

    names = list(tools.strategies)
    if tools.strategies is registry.STRATEGIES:
        composite: Callable[[], list[str]] = getattr(registry, "strategy_names", lambda: [])
        names.extend(n for n in composite() if n not in names)
    return names


def strategy_options(tools: Toolbox, name: str) -> tuple[str, dict[str, Any]]:
    """``name`` ("stitch:fill=0.7") split into its registered key and its typed options; a clear
    error for an unknown key or option. Composite keys ("stitch+taca") keep their options in the
    name, which the registry parses when it runs them."""
    key, _, option_text = name.partition(":")
    strategy = tools.strategies.get(key)
    if strategy is None:
        if key not in available_strategies(tools):
            raise InvalidInputError(
                "strategy", f"unknown strategy '{name}'",
                f"use one of {', '.join(dict.fromkeys(['auto', *available_strategies(tools)]))}",
            )  # fmt: skip
        strategy = get_strategy(name)[0]
    return key, parse_options(strategy, name, option_text)


def _run_strategy(
    tools: Toolbox,
    name: str,
    backend: Backend,
    plan: Plan,
    settings: SamplingSettings,
    base: str = "",
    previous: str | None = None,
    cancel: CancelCheck | None = None,
) -> RenderResult:
    progress = ProgressHook(name, settings.steps)
    hooks: list[SamplerHook] = [progress] if cancel is None else [cancel, progress]
    key, options = strategy_options(tools, name)
    strategy = tools.strategies.get(key)
    if strategy is not None:
        extra: dict[str, Any] = {}
        parameters = inspect.signature(strategy).parameters
        if base and "base" in parameters:
            extra["base"] = base  # what rendered the image refine corrects
        if previous and "image" in parameters:
            with Image.open(previous) as opened:
                extra["image"] = opened.convert("RGB")  # correct the image the user saw, not a re-run
        if "segmenter" in parameters and (segmenter := tools.segmenter()) is not None:
            extra["segmenter"] = segmenter  # refine's masks from SAM rather than attention maps
        if "verifier" in parameters:
            # refine keeps a round by the same judge the verify node uses: exact on the toy world
            extra["verifier"] = tools.refine_verifier(backend)
        tuned = model_options(strategy, name, backend)  # the model's tuning, then the user's
        options.pop("mode", None)
        from scenewright.executor.object_lora import lora_render

        with lora_render(backend, plan):
            result: RenderResult = strategy(
                backend, plan, settings, progress=False, hooks=hooks, **{**extra, **tuned, **options}
            )
        if options:
            result.strategy = name  # the record says which options ran
        return result
    from scenewright.executor import strategies as registry

    run: Callable[..., RenderResult] = registry.run_strategy
    return run(name, backend, plan, settings, hooks=hooks, progress=False)


def execute_node(state: AgentState, config: Mapping[str, Any], tools: Toolbox) -> dict[str, Any]:
    """Render with the routed strategy; on an exception or a non-finite image fall back to vanilla.

    Files are written only after a render succeeds and never replace anything, so a failure
    here loses nothing already on disk and the last good image stays the thread's image.
    """
    emit("execute", 0, 1, "loading the model")
    notes = list(state.get("notes", []))
    plan = Plan.model_validate(state["plan"])
    try:
        backend = tools.backend()
        settings = _settings(state, backend)
        settings.validate(backend)
    except ScenewrightError as error:
        return {"status": "failed", "errors": [str(error)], "notes": notes}
    if state.get("refine_round", 0) == 0:
        notes.extend(unknown_word_notes(plan, backend))
    name = state.get("strategy_used") or "vanilla"
    order = [name] if name == "vanilla" else [name, "vanilla"]
    result: RenderResult | None = None
    thread = str(config.get("configurable", {}).get("thread_id", "default"))
    cancel = CancelCheck(lambda: tools.cancelled(thread))
    for attempt in order:
        try:
            base = str(state.get("refine_base", "")) if attempt == "refine" else ""
            previous = state.get("paths", {}).get("image") if attempt == "refine" else None
            # One render at a time per model, whichever face or thread asks (issue 17): the others
            # wait here, never sharing the transformer's processors mid-render.
            with backend.render_lock():
                result = _run_strategy(tools, attempt, backend, plan, settings, base, previous, cancel)
            if not _finite(result):
                raise FloatingPointError("the image has NaN or infinite values")
            break
        except RenderCancelled as cancelled:  # the user's choice, not a failure: no fallback
            release_cached_memory()
            return {"status": "cancelled", "errors": [str(cancelled)], "notes": notes}
        except Exception as error:  # any failure of a strategy: the cheaper one takes over
            result = None
            release_cached_memory()
            if is_out_of_memory(error):
                device = str(getattr(backend, "device", "the device"))
                oom = memory_error(attempt, settings, plan, device)
                if attempt == "vanilla":
                    return {"status": "failed", "errors": [str(oom)], "notes": notes}
                notes.append(f"{oom}; fell back to vanilla")
                continue
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            if attempt == "vanilla":
                return {"status": "failed", "errors": [f"render failed ({reason})"], "notes": notes}
            notes.append(f"strategy {attempt} failed ({reason}); fell back to vanilla")
    assert result is not None
    round_ = int(state.get("refine_round", 0))
    refined = result.report.get("refine")
    if round_ and isinstance(refined, Mapping) and not _kept_a_round(refined):
        return _rejected_pass(state, tools, refined, round_, notes)
    used = result.strategy or name
    route = str(state.get("route_reason", ""))
    auto = result.report.get("auto")
    if isinstance(auto, Mapping) and auto.get("why"):
        route = f"auto chose {auto.get('chose')}: {auto['why']}"
    folder = _turn_dir(tools, thread, int(state.get("turn", 1)), int(state.get("refine_round", 0)))
    metadata: dict[str, Any] = {
        "version": __version__,
        "plan": plan.to_json_dict(),
        "settings": asdict(settings),
        "backend": backend.describe(),
        "strategy": used,
        "route": route,
        "request": state.get("request", ""),
        "thread": thread,
        "notes": notes,
    }
    paths, sheet = _write_set(
        folder,
        tools.overwrite,
        lambda target: _write_outputs(tools, result, plan, settings, metadata, target, backend, notes),
    )
    if sheet is not None:
        paths["attention"] = str(sheet)
    emit("execute", 1, 1, f"image written to {paths['image']}")
    update: dict[str, Any] = {
        "strategy_used": used,
        "route_reason": route,
        "paths": paths,
        "image_path": paths["image"],
        "notes": notes,
        "strategy_report": _jsonable(result.report),
        "status": "rendered",
    }
    refined = result.report.get("refine")
    if isinstance(refined, Mapping) and state.get("refine_round", 0):
        explained = explain_pass(refined, int(state.get("refine_round", 0)))
        more = int(state.get("refine_round", 0)) < tools.max_refine_rounds
        notes.extend(refine_notes(explained, tools.max_refine_rounds > 1, more))
        update["refine_explanation"] = [*state.get("refine_explanation", []), explained]
    return update


def _kept_a_round(refined: Mapping[str, Any]) -> bool:
    """Whether a refine pass changed the image it was given (round 0 is that image itself)."""
    rounds = refined.get("rounds") or []
    return any(isinstance(r, Mapping) and r.get("kept") for r in rounds[1:])


def _rejected_pass(
    state: AgentState, tools: Toolbox, refined: Mapping[str, Any], round_: int, notes: list[str]
) -> dict[str, Any]:
    """A refine pass that kept the image it started from: the same pixels, so no new folder; the
    turn's paths stay on the image kept, and the strategy stays the one that drew it."""
    explained = explain_pass(refined, round_)
    more = round_ < tools.max_refine_rounds
    notes.extend(refine_notes(explained, tools.max_refine_rounds > 1, more))
    emit("execute", 1, 1, f"refine pass {round_} kept the image it started from")
    earlier = state.get("refine_explanation") or []
    if any(r.get("kept") for past in earlier for r in past.get("rounds", [])):
        kept_by = f"refine:{state.get('refine_base') or 'vanilla'}"  # an earlier pass's repair stays
    else:
        kept_by = str(state.get("refined_from") or state.get("refine_base") or "vanilla")
    return {
        "strategy_used": kept_by,
        "paths": dict(state.get("paths") or {}),
        "image_path": (state.get("paths") or {}).get("image"),
        "notes": notes,
        "status": "rendered",
        "refine_explanation": [*state.get("refine_explanation", []), explained],
    }


def _write_set(
    folder: Path, overwrite: bool, write: Callable[[Path], tuple[dict[str, str], Path | None]]
) -> tuple[dict[str, str], Path | None]:
    """A render's files, ``write(target)``, whole or not at all: into a new or empty ``folder``
    through a staging folder renamed into place at once (a kill at any moment leaves no partial
    set); into a folder that already holds files (``--overwrite``) staged file by file."""
    if folder.is_dir() and any(folder.iterdir()):
        with write_together():
            return write(folder)
    with staged_folder(folder, overwrite) as stage:
        paths, sheet = write(stage.path)
    staged = str(stage.path)
    paths = {kind: path.replace(staged, str(folder), 1) for kind, path in paths.items()}
    return paths, (Path(str(sheet).replace(staged, str(folder), 1)) if sheet is not None else None)


def _write_outputs(
    tools: Toolbox,
    result: RenderResult,
    plan: Plan,
    settings: SamplingSettings,
    metadata: dict[str, Any],
    folder: Path,
    backend: Backend,
    notes: list[str],
) -> tuple[dict[str, str], Path | None]:
    """Write a render's files into ``folder`` (as ``_write_set`` stages them); their paths."""
    paths = {
        "image": str(save_png(result.image, folder / "image.png", metadata, tools.overwrite)),
        "plan": str(save_json(plan.to_json_dict(), folder / "plan.json", tools.overwrite)),
        "overlay": str(write_overlay(result.image, plan, folder / "overlay.png", metadata, tools.overwrite)),
    }
    maps = (
        result.report.get("attention_maps")
        or result.report.get("maps")
        or _explain(backend, result.image, plan, settings, notes)
    )
    sheet = write_attention_sheet(
        maps if isinstance(maps, Mapping) else None,
        folder / "attention.png",
        metadata,
        result.image,
        tools.overwrite,
    )
    return paths, sheet


def explain_pass(refined: Mapping[str, Any], pass_number: int) -> dict[str, Any]:
    """One pass of the refine strategy, as the ``refine_explanation`` state keeps it."""
    rounds = [
        {
            "round": int(r.get("round", 0)),
            "kept": bool(r.get("kept")),
            "failing": [int(i) for i in r.get("failing", [])],
            "explanation": str(r.get("explanation", "")),
        }
        for r in refined.get("rounds", [])[1:]
        if isinstance(r, Mapping)
    ]
    return {"pass": pass_number, "summary": str(refined.get("summary", "")), "rounds": rounds}


def refine_notes(explained: Mapping[str, Any], several_passes: bool, more_passes: bool) -> list[str]:
    """The user's lines for one refine pass: each round's change or refusal, then the outcome."""
    label = f"refine pass {explained['pass']}" if several_passes else "refine"
    lines = [f"{label} {r['explanation']}" for r in explained["rounds"] if r["explanation"]]
    lines.append(f"{label}: {explained['summary']}")
    if more_passes and not any(r["kept"] for r in explained["rounds"]):
        lines.append(f"{label}: no further pass (it would repeat this one exactly: same image, same seeds)")
    return lines


def _explain(
    backend: Backend, image: Image.Image, plan: Plan, settings: SamplingSettings, notes: list[str]
) -> dict[str, Any] | None:
    """Per-object saliency maps of the finished image for the attention sheet (None: no objects).

    A failure here costs the sheet, never the image.
    """
    if not plan.objects:
        return None
    from scenewright.executor.explain import named_maps, read_object_maps

    try:
        return dict(named_maps(read_object_maps(backend, image, plan, settings), plan))
    except Exception as error:  # the maps explain; they must not break a finished render
        notes.append(f"no attention maps ({type(error).__name__}: {error})".splitlines()[0][:300])
        return None


def verify_node(state: AgentState, tools: Toolbox) -> dict[str, Any]:
    """Judge the image against the plan with the configured verifier."""
    emit("verify", 0, 1, "checking the image against the plan")
    plan = Plan.model_validate(state["plan"])
    with Image.open(state["paths"]["image"]) as opened:
        image = opened.convert("RGB")
    try:
        rows, verdict = tools.verifier(image, plan, state.get("strategy_report") or {})
    except Exception as error:  # a broken verifier must not lose the image
        notes = [*state.get("notes", []), f"verification failed ({type(error).__name__}: {error})"]
        return {"report": [], "verified": None, "notes": notes}
    update: dict[str, Any] = {"report": rows, "verified": verdict}
    if plan.objects and is_blank(image):
        # Nothing can be found on one flat colour, whatever the verifier says (or cannot say).
        update["verified"] = verdict = False
        update["notes"] = [*state.get("notes", []), BLANK_NOTE]
    emit(
        "verify", 1, 1, "verified" if verdict else ("not verified" if verdict is None else "mismatches found")
    )
    return update


BLANK_NOTE = "the image is empty (one flat colour): it differs from the plan"
# A rendered scene spans far more than this many grey levels; an all-black (max pixel 1) or all-
# white image does not.
BLANK_RANGE = 8


def is_blank(image: Image.Image) -> bool:
    """Whether ``image`` is one flat colour (every channel within BLANK_RANGE levels)."""
    extrema: Any = image.convert("RGB").getextrema()  # one (low, high) per channel
    return all(high - low < BLANK_RANGE for low, high in extrema)


def wants_refine(state: AgentState, tools: Toolbox) -> bool:
    """Another round only when verification failed, a refine strategy exists, rounds remain and
    the last pass changed the image (a pass that kept nothing would repeat itself exactly)."""
    passes = state.get("refine_explanation") or []
    repeats = bool(passes) and not any(r.get("kept") for r in passes[-1].get("rounds", []))
    return (
        state.get("verified") is False
        and "refine" in tools.strategies
        and int(state.get("refine_round", 0)) < tools.max_refine_rounds
        and not repeats  # a pass that kept nothing would give the same image again
    )


def refine_node(state: AgentState) -> dict[str, Any]:
    """Send the plan back through ``execute`` with the refine strategy, based on what just ran.

    ``auto:regional`` becomes ``regional`` (the name recorded as the base); the refine strategy
    receives the image just written and repairs it in place, so it corrects the image the user saw.
    """
    round_ = int(state.get("refine_round", 0)) + 1
    used = str(state.get("strategy_used") or "vanilla")
    base = state.get("refine_base") or used.split(":")[-1]
    emit("refine", round_, round_, f"refine round {round_} over {base}")
    return {
        "strategy_used": "refine",
        "refined_from": state.get("refined_from") or used,
        "refine_round": round_,
        "refine_base": base,
        "route_reason": f"refine round {round_} over {base}",
    }


def finish_node(state: AgentState) -> dict[str, Any]:
    """Close the turn: a rendered turn joins the history; a failed one keeps the last good image."""
    status = state.get("status", "")
    if status == "rendered":
        status = "done"
    elif status not in ("invalid", "failed", "cancelled", "help"):
        status = "failed" if state.get("errors") else "done"
    update: dict[str, Any] = {"status": status}
    if status == "done" and state.get("paths"):
        turn: Turn = {
            "request": state.get("request", ""),
            "plan": state.get("plan") or {},
            "seed": int(state.get("seed", 0)),
            "strategy": state.get("strategy_used", ""),
            "paths": dict(state.get("paths", {})),
            "report": list(state.get("report", [])),
            "verified": state.get("verified"),
            "refine": list(state.get("refine_explanation") or []),
            "refined_from": str(state.get("refined_from") or ""),
        }
        update["history"] = [*state.get("history", []), turn]
    emit("finish", 1, 1, status)
    return update


# --------------------------------------------------------------------------------- verifiers
def toy_verifier(
    image: Image.Image, plan: Plan, _report: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool | None]:
    """The toy world's exact judge: found count, colour, placement and relations per object;
    an object it cannot judge (a word the model never learned) is said so, and never passes."""
    from scenewright.agent.object_report import exact_rows

    return exact_rows(image, plan)


def report_verifier(
    image: Image.Image, plan: Plan, report: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool | None]:
    """Use the per-object rows a strategy reports (from its attention maps) when it has them."""
    rows = report.get("objects")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        verdicts = [r.get("ok") for r in rows]
        verdict = None if any(v is None for v in verdicts) else all(bool(v) for v in verdicts)
        return [dict(r) for r in rows], verdict
    why = "no judge on this backend: the strategy checked no attention maps (pass --detector)"
    return [
        {"name": o.name, "wanted": o.count, "found": None, "in_boxes": None, "ok": None, "unchecked": why}
        for o in plan.objects
    ], None
