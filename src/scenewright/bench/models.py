"""``scenewright bench models``: every strategy on the published FLUX.1 and SD3.5 geometries.

For each model (random weights, built offline from :mod:`scenewright.bench.geometry`) one plan is
rendered by the plain diffusers pipeline (``FluxPipeline`` / ``StableDiffusion3Pipeline`` with the
same size, steps, guidance and seed as our sampler) and by each strategy through
``run_strategy``. Every case runs twice: round 1 makes the first call of every case, round 2 the
warm call of every case, so that a change in the machine's load hits all cases alike rather than
one strategy's ratio. Reported per case: seconds of the first and of the warm call, both against
the pipeline's warm call, and the peak memory above the weights during each call (CUDA: the
allocator's peak over what was allocated before, by :mod:`scenewright.bench.attention`'s meter;
CPU: the kernel's resident high-water mark over the resident size before, see
:func:`memory_meter`), the warm call's against vanilla's.
Each case's transformer calls are counted too, and turned into the work they take on the
published model (:mod:`scenewright.bench.work`): a device-independent prediction of the time ratio
that ``--scale narrow`` gives at the real token counts on a CPU.
A case that fails (an exception, CUDA out of memory) is recorded with its one-line error and the
run goes on; a model whose weights do not fit in free memory is skipped the same way.

The weights are random: the arithmetic is the trained models', but what depends on the image
drawn (Stitch's redraws of unformed objects, NUMINA's layouts, refine's rounds) can branch
otherwise, so those strategies' ratios are for untrained models. Each case's own report (which
pass ran, redraws, rounds) is kept in the JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scenewright.bench.geometry import FULL_SIZE, MODEL_NAMES, SCALES, SMALL_SIZE, ModelGeometry, geometry
from scenewright.errors import InvalidInputError

DEFAULT_PROMPT = "two red apples left of a blue vase, a cat on the right, at night"
DEFAULT_STRATEGIES = ("vanilla", "taca", "regional", "numina", "stitch", "refine", "auto")
PIPELINE = "pipeline"  # the plain diffusers pipeline, the reference of every time ratio
FULL_STEPS = 28
SMALL_STEPS = 4
DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}
LEGEND = (
    "first: seconds of the case's first call in this process; warm: its second call (round 2, after "
    "every case's first call); x pipeline: divided by the diffusers pipeline's warm seconds; peak: "
    "memory above the weights during the warm call (CUDA: allocator peak; CPU: resident high-water "
    "mark); x vanilla: divided by vanilla's peak; calls: transformer calls; work x pipeline: the "
    "floating-point work of those calls on the published model (their batch and token counts, and the "
    "attention pairs the kernels computed, at the published widths and depth, see scenewright.bench.work) "
    "divided by the pipeline's, "
    "which predicts the time ratio where matrix products fill the GPU (--scale narrow counts it at "
    "the real token counts on any machine)"
)


@dataclass
class ModelsBenchConfig:
    """What to measure; ``None`` takes the scale's default."""

    models: Sequence[str] = MODEL_NAMES
    strategies: Sequence[str] = DEFAULT_STRATEGIES
    scale: str = "full"
    size: int | None = None
    steps: int | None = None
    guidance: float | None = None
    device: str | None = None
    dtype: str | None = None
    seed: int = 0
    prompt: str = DEFAULT_PROMPT
    t5_tokens: int | None = None


@dataclass
class CaseResult:
    """One case of one model: the pipeline or a strategy."""

    case: str
    ran: str = ""  # what actually ran (auto and refine name the strategy they chose)
    first_seconds: float | None = None
    seconds: float | None = None  # the warm call
    first_x_pipeline: float | None = None
    x_pipeline: float | None = None
    peak_bytes: float | None = None  # above the weights, during the warm call
    first_peak_bytes: float | None = None  # the same during the first call
    memory_x_vanilla: float | None = None
    error: str | None = None
    max_pixel_difference_to_pipeline: int | None = None  # vanilla only: does it draw what diffusers draws?
    report: dict[str, Any] | None = None  # the strategy's own report (which pass ran, redraws, rounds)
    transformer_calls: int | None = None  # of the last call that ran (first or warm: the same work)
    token_rows: int | None = None  # over those calls: batch x (text + image tokens)
    published_flops: float | None = None  # their work on the published model (scenewright.bench.work)
    work_x_pipeline: float | None = None  # published_flops divided by the pipeline's
    # The same with every attention pair of every sequence priced, as if no kernel skipped any.
    dense_published_flops: float | None = None
    dense_work_x_pipeline: float | None = None


# ----------------------------------------------------------------------------- validation


def _names(value: str | Sequence[str], option: str) -> list[str]:
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [v.strip() for v in value]
    items = [v for v in items if v]
    if not items:
        raise InvalidInputError(
            option, "is empty", f"name at least one, e.g. --{option} {DEFAULT_STRATEGIES[0]}"
        )
    return items


def resolve_models(value: str | Sequence[str]) -> list[str]:
    names = list(MODEL_NAMES) if value == "all" else _names(value, "models")
    for name in names:
        if name not in MODEL_NAMES:
            raise InvalidInputError(
                "models", f"unknown model '{name}'", f"use some of {', '.join(MODEL_NAMES)}"
            )
    return names


def resolve_strategies(value: str | Sequence[str]) -> list[str]:
    from scenewright.executor.catalogue import check_strategy

    names = _names(value, "strategies")
    for name in names:
        if name == PIPELINE:
            raise InvalidInputError(
                "strategies", "'pipeline' always runs as the reference", "leave it out of --strategies"
            )
        try:
            check_strategy(name)
        except InvalidInputError as error:  # it names the valid strategies or options
            raise InvalidInputError("strategies", error.problem, error.fix) from error
    return names


def resolve_device(value: str | None) -> Any:
    from scenewright.backends.registry import resolve_device as resolve

    return resolve(value)


def resolve_dtype(value: str | None, device: Any) -> Any:
    import torch

    if value is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if value not in DTYPES:
        raise InvalidInputError("dtype", f"unknown dtype '{value}'", "use float32, bfloat16 or float16")
    dtype = getattr(torch, DTYPES[value])
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported(False):
        raise InvalidInputError(
            "dtype",
            f"bfloat16 is not supported by {torch.cuda.get_device_name(device)}",
            "use --dtype float16 or --dtype float32",
        )
    try:  # the kinds of kernel the models need: matmul, attention, group norm (the VAE)
        x = torch.ones(1, 4, 4, 4, device=device, dtype=dtype)
        torch.nn.functional.scaled_dot_product_attention(x, x, x @ x)
        torch.nn.functional.group_norm(x, 2)
    except RuntimeError as error:
        raise InvalidInputError(
            "dtype", f"{value} is not supported on {device} ({_one_line(error)})", "use --dtype float32"
        ) from error
    return dtype


def check_size(size: int, geometries: Sequence[ModelGeometry]) -> None:
    if size < 16 or size % 16:
        nearest = max(16, round(size / 16) * 16)
        raise InvalidInputError(
            "size", f"{size} is not a positive multiple of 16 (8x VAE, 2x2 patches)", f"use --size {nearest}"
        )
    for geo in geometries:
        limit = geo.max_tokens_per_side
        if limit is not None and size // geo.size_multiple > limit:
            raise InvalidInputError(
                "size",
                f"{size} needs {size // geo.size_multiple} tokens a side but {geo.name} has position "
                f"embeddings for {limit}",
                f"use --size {limit * geo.size_multiple} or less",
            )


# ----------------------------------------------------------------------------- measuring


def _one_line(error: BaseException) -> str:
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return message if len(message) <= 200 else message[:197] + "..."


def _is_cuda_oom(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError)


def _free_memory(device: Any) -> int | None:
    """Bytes that can still be allocated on ``device`` (None when it cannot be told)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _release(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b > 0:
        return None
    return a / b


class PeakResident:
    """Exact peak resident size of this process during a block, on Linux, without a sampling
    thread: writing 5 to ``/proc/self/clear_refs`` resets the kernel's high-water mark (VmHWM),
    read back on exit. ``peak`` is that mark minus the resident size on entry."""

    CLEAR_REFS = "/proc/self/clear_refs"

    def __init__(self) -> None:
        self.peak = 0

    @staticmethod
    def _status_kib(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise OSError(f"{field} missing from /proc/self/status")

    @classmethod
    def available(cls) -> bool:
        try:
            with open(cls.CLEAR_REFS, "w") as f:
                f.write("5")
            cls._status_kib("VmHWM")
        except OSError:
            return False
        return True

    def __enter__(self) -> PeakResident:
        from scenewright.bench.attention import _return_freed_memory

        _return_freed_memory()  # big freed blocks go back to the OS: resident size follows live tensors
        with open(self.CLEAR_REFS, "w") as f:
            f.write("5")
        self._base = self._status_kib("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(0, self._status_kib("VmHWM") - self._base) * 1024


def memory_meter(device: Any) -> Any:
    """A context manager with ``.peak`` after exit: bytes above those in use on entry.

    CUDA: the allocator's peak (``_PeakMemory`` of :mod:`scenewright.bench.attention`). CPU on
    Linux: the kernel's exact high-water mark (:class:`PeakResident`), which needs no sampling
    thread and so does not slow the call it measures; elsewhere ``_PeakMemory``'s resident size
    sampled every 0.5 ms.
    """
    from scenewright.bench.attention import _PeakMemory

    if device.type == "cpu" and PeakResident.available():
        return PeakResident()
    return _PeakMemory(device)


def memory_method(device: Any) -> str:
    if device.type == "cuda":
        return "CUDA allocator: max_memory_allocated() minus memory_allocated() before the call"
    if PeakResident.available():
        return "resident size: the kernel's high-water mark (VmHWM, reset before the call) minus VmRSS before"
    return "resident size sampled every 0.5 ms, minus the resident size before the call"


def _pipeline_render(backend: Any, plan: Any, settings: Any) -> tuple[Any, str, dict[str, Any]]:
    """The plain diffusers pipeline with the settings our sampler gets (same noise generator)."""
    from scenewright.executor.sampler import make_generator

    # Qwen-Image's pipeline guides with true_cfg_scale, and only when given a negative prompt.
    guidance = (
        {"true_cfg_scale": settings.guidance, "negative_prompt": settings.negative_prompt}
        if backend.family == "qwen-image"
        else {"guidance_scale": settings.guidance}
    )
    output = backend.pipe(
        prompt=plan.global_prompt,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        generator=make_generator(settings.seed),
        output_type="pil",
        max_sequence_length=backend.max_sequence_length,
        **guidance,
        # FLUX.2: the encoder layers the backend stacks (the random encoders have fewer than 30)
        **({"text_encoder_out_layers": backend.text_layers} if hasattr(backend, "text_layers") else {}),
    )
    return output.images[0], "diffusers", {}


def _strategy_render(name: str, backend: Any, plan: Any, settings: Any) -> tuple[Any, str, dict[str, Any]]:
    from scenewright.executor.strategies import run_strategy

    result = run_strategy(name, backend, plan, settings)
    return result.image, result.strategy, dict(result.report)


def _bench_model(
    geo: ModelGeometry,
    strategies: Sequence[str],
    plan: Any,
    device: Any,
    dtype: Any,
    size: int,
    steps: int,
    guidance: float | None,
    seed: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    import numpy as np
    import torch

    from scenewright.bench.attention import _sync
    from scenewright.bench.geometry import build_backend, weight_bytes
    from scenewright.bench.work import published_flops, work_meter
    from scenewright.executor.sampler import SamplingSettings

    entry: dict[str, Any] = {"model": geo.name, "geometry": geo.describe(), "error": None, "cases": []}
    needed = weight_bytes(geo, dtype)
    entry["weight_bytes_estimate"] = needed
    free = _free_memory(device)
    if free is not None and needed > free:
        entry["error"] = (
            f"weights need {needed / 2**30:.1f} GiB in {str(dtype).removeprefix('torch.')} but "
            f"{free / 2**30:.1f} GiB is free on {device}; use --scale small, a smaller --dtype or a larger device"
        )
        log(f"[{geo.name}] skipped: {entry['error']}")
        return entry
    blocks = ", ".join(f"{v} {k}" for k, v in geo.blocks.items())
    log(
        f"[{geo.name}] building ({geo.scale}: {blocks} blocks, {geo.heads} heads x {geo.head_dim}, "
        f"T5 {geo.t5_tokens} tokens) on {device} in {str(dtype).removeprefix('torch.')}"
    )
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    started = time.perf_counter()
    try:
        backend = build_backend(geo, device, dtype, seed=seed, words=[plan.prompt])
        _sync(device)
    except Exception as error:  # out of memory, or any failure to construct: the run goes on
        entry["error"] = f"build failed: {_one_line(error)}"
    if entry["error"]:
        log(f"[{geo.name}] {entry['error']}")
        _release(device)  # outside the handler, whose traceback holds the half-built model
        return entry
    entry["build_seconds"] = time.perf_counter() - started
    if device.type == "cuda":
        entry["weight_bytes"] = torch.cuda.memory_allocated(device) - before
    settings = SamplingSettings(
        height=size,
        width=size,
        steps=steps,
        guidance=backend.defaults.guidance if guidance is None else guidance,
        seed=seed,
    )
    entry["settings"] = asdict(settings)
    log(
        f"[{geo.name}] built in {entry['build_seconds']:.1f} s; {size}x{size}, {steps} steps, "
        f"guidance {settings.guidance:g}"
    )

    def render(name: str) -> tuple[Any, str, dict[str, Any]]:
        if name == PIPELINE:
            return _pipeline_render(backend, plan, settings)
        return _strategy_render(name, backend, plan, settings)

    cases = [PIPELINE, *strategies]
    results = {name: CaseResult(name) for name in cases}
    images: dict[str, Any] = {}
    total = len(cases)

    def call(name: str, warm: bool) -> None:
        """One timed and metered call; a failure is recorded in the case's result."""
        record = results[name]
        _release(device)
        meter = memory_meter(device)
        try:
            with meter, work_meter(backend.pipe.transformer) as work:
                _sync(device)
                start = time.perf_counter()
                image, record.ran, report = render(name)
                _sync(device)
                seconds = time.perf_counter() - start
        except Exception as error:  # a failing case is a result, not the end of the run
            record.error = _one_line(error)
            out_of_memory = _is_cuda_oom(error)
        else:
            out_of_memory = False
        if record.error:
            if out_of_memory:  # outside the handler: the traceback's frames no longer hold tensors
                _release(device)
            return
        record.report = report or None
        record.transformer_calls, record.token_rows = work.calls, work.token_rows
        record.published_flops = published_flops(geo, work)
        record.dense_published_flops = published_flops(geo, work, dense=True)
        if warm:
            record.seconds, record.peak_bytes = seconds, float(meter.peak)
        else:
            record.first_seconds, record.first_peak_bytes = seconds, float(meter.peak)
        if name in (PIPELINE, "vanilla") and name not in images:
            images[name] = np.asarray(image.convert("RGB"), dtype=np.int16)

    # Round 1 makes every case's first call, round 2 every case's warm call: a change in the
    # machine's load between rounds shifts all cases alike, not one strategy's ratio.
    for round_name, warm in (("first", False), ("warm", True)):
        for index, name in enumerate(cases, start=1):
            record = results[name]
            if record.error:
                continue  # it failed in round 1: a second try would fail the same way
            call(name, warm)
            seconds, peak = (
                (record.seconds, record.peak_bytes)
                if warm
                else (record.first_seconds, record.first_peak_bytes)
            )
            if record.error or seconds is None or peak is None:
                note = f"failed: {record.error}"
            else:
                note = f"{seconds:.2f} s, peak +{peak / 2**20:.0f} MiB"
            log(f"[{geo.name} {round_name} {index}/{total}] {name}: {note}")

    pipeline_seconds = results[PIPELINE].seconds
    vanilla = results.get("vanilla")
    for record in results.values():
        record.work_x_pipeline = _ratio(record.published_flops, results[PIPELINE].published_flops)
        record.dense_work_x_pipeline = _ratio(
            record.dense_published_flops, results[PIPELINE].dense_published_flops
        )
        record.first_x_pipeline = _ratio(record.first_seconds, pipeline_seconds)
        record.x_pipeline = _ratio(record.seconds, pipeline_seconds)
        record.memory_x_vanilla = _ratio(record.peak_bytes, vanilla.peak_bytes if vanilla else None)
    same_shape = (
        "vanilla" in images and PIPELINE in images and images["vanilla"].shape == images[PIPELINE].shape
    )
    if vanilla is not None and same_shape:
        vanilla.max_pixel_difference_to_pipeline = int(np.abs(images["vanilla"] - images[PIPELINE]).max())
    entry["cases"] = [asdict(r) for r in results.values()]
    return entry


def run_models_bench(config: ModelsBenchConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validate ``config``, measure every model, return the JSON-ready results."""
    import diffusers
    import torch

    from scenewright.planner.command import make_plan

    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    models = resolve_models(config.models)
    strategies = resolve_strategies(config.strategies)
    if config.scale not in SCALES:
        raise InvalidInputError(
            "scale", f"unknown scale '{config.scale}'", f"use --scale {' or '.join(SCALES)}"
        )
    if config.t5_tokens is not None and not 1 <= config.t5_tokens <= 512:
        raise InvalidInputError(
            "t5-tokens", f"{config.t5_tokens} is outside 1..512", "use --t5-tokens 256 or leave it out"
        )
    geometries = [geometry(name, config.scale, config.t5_tokens) for name in models]
    small = config.scale == "small"
    size = config.size if config.size is not None else (SMALL_SIZE if small else FULL_SIZE)
    check_size(size, geometries)
    steps = config.steps if config.steps is not None else (SMALL_STEPS if small else FULL_STEPS)
    if steps < 1:
        raise InvalidInputError("steps", f"{steps} is not a positive step count", "use --steps 1 or more")
    if config.guidance is not None and config.guidance < 0:
        raise InvalidInputError("guidance", f"{config.guidance} is negative", "use --guidance 0 or more")
    if config.seed < 0:
        raise InvalidInputError("seed", f"{config.seed} is negative", "use --seed 0 or more")
    device = resolve_device(config.device)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # the allocator statistics and synchronisation are per device
    dtype = resolve_dtype(config.dtype, device)
    plan = make_plan(config.prompt, "rules", seed=config.seed).plan

    entries = []
    for geo in geometries:
        entries.append(
            _bench_model(
                geo, strategies, plan, device, dtype, size, steps, config.guidance, config.seed, emit
            )
        )
        _release(device)  # the model's weights go before the next model is built
    return {
        "config": {
            **asdict(config),
            "models": models,
            "strategies": strategies,
            "size": size,
            "steps": steps,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
        },
        "plan": plan.to_json_dict(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "timing": "wall seconds of one whole render (text encoding, sampling, decoding), synchronised on "
        "CUDA; round 1 = first calls of all cases, round 2 = warm calls of all cases",
        "memory": memory_method(device),
        "legend": LEGEND,
        "models": entries,
    }


# ----------------------------------------------------------------------------- reporting


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None or math.isnan(value) else f"{value:{spec}}{suffix}"


def markdown_table(results: dict[str, Any]) -> str:
    """One row per model and case, then the legend."""
    header = [
        "model",
        "case",
        "ran",
        "first s",
        "warm s",
        "first x pipeline",
        "warm x pipeline",
        "calls",
        "work x pipeline",
        "peak MiB",
        "peak x vanilla",
        "error",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in results["models"]:
        if entry["error"]:
            lines.append(f"| {entry['model']} |" + " - |" * (len(header) - 2) + f" {entry['error']} |")
            continue
        for case in entry["cases"]:
            peak = case["peak_bytes"]
            cells = [
                entry["model"],
                case["case"],
                case["ran"] or "-",
                _fmt(case["first_seconds"], ".2f"),
                _fmt(case["seconds"], ".2f"),
                _fmt(case["first_x_pipeline"], ".2f", "x"),
                _fmt(case["x_pipeline"], ".2f", "x"),
                _fmt(case["transformer_calls"], "d"),
                _fmt(case["work_x_pipeline"], ".2f", "x"),
                _fmt(None if peak is None else peak / 2**20, ".0f"),
                _fmt(case["memory_x_vanilla"], ".2f", "x"),
                (case["error"] or "").replace("|", "/"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    legend = LEGEND + "."
    if results["config"].get("scale") == "narrow":
        legend += (
            " Narrow scale: the seconds and memory are those of a model with 2 heads of 8 and say "
            "nothing of the published one; read the calls and the work."
        )
    return "\n".join(lines) + "\n\n" + legend


# ----------------------------------------------------------------------------- command


def register(bench_sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``models`` to the ``scenewright bench`` sub-commands."""
    p = bench_sub.add_parser(
        "models",
        help="time and memory of every strategy vs the diffusers pipeline on FLUX.1 / SD3.5 geometries",
    )
    p.add_argument(
        "--models", default="all", help=f"comma-separated, of {', '.join(MODEL_NAMES)} (default all)"
    )
    p.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help=f"comma-separated strategy names (default {','.join(DEFAULT_STRATEGIES)})",
    )
    p.add_argument(
        "--scale",
        default="full",
        help="full (the published block counts, default), small (every width, a few blocks) or "
        "narrow (a few blocks of 2 heads at the real image and text lengths: counts the work of every "
        "strategy at full size on a CPU; its seconds and memory are the narrow model's)",
    )
    p.add_argument(
        "--size",
        type=int,
        help=f"image side in pixels (default {FULL_SIZE} full and narrow, {SMALL_SIZE} small)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help=f"denoising steps (default {FULL_STEPS} full and narrow, {SMALL_STEPS} small)",
    )
    p.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    p.add_argument(
        "--t5-tokens", type=int, help="T5 sequence length (default: 512 dev, 256 others; 32 small)"
    )
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the request, planned by the rules planner")
    p.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    p.add_argument("--dtype", help="float32, bfloat16, float16 (default bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--seed", type=int, default=0, help="noise and layout seed (default 0)")
    p.add_argument("--json", type=Path, help="write the results to this JSON file")
    p.add_argument("--chart", type=Path, help="write a bar chart PNG here (needs matplotlib)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --json / --chart files")
    p.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr (the table says what failed)"
    )
    p.set_defaults(handler=bench_models_command)
    return p


def bench_models_command(args: argparse.Namespace) -> int:
    """Handler of ``scenewright bench models``: table on stdout, progress on stderr, files written."""
    from scenewright.bench.charts import have_matplotlib, models_chart
    from scenewright.tools.output import atomic_write_bytes, check_free

    outputs = [p for p in (args.json, args.chart) if p is not None]
    for path in outputs:
        if path.exists() and path.is_dir():
            raise InvalidInputError(
                "json" if path == args.json else "chart", f"{path} is a folder", "give a file path"
            )
    check_free(outputs, args.overwrite)  # before any work: a result is never thrown away at the end
    if args.chart is not None and not have_matplotlib():  # said in one line; the run goes on
        args.chart = None
    config = ModelsBenchConfig(
        models=args.models,
        strategies=args.strategies,
        scale=args.scale,
        size=args.size,
        steps=args.steps,
        guidance=args.guidance,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        prompt=args.prompt,
        t5_tokens=args.t5_tokens,
    )
    results = run_models_bench(config, log=(lambda line: None) if args.quiet else None)
    print(markdown_table(results))
    if args.json is not None:
        data = (json.dumps(results, indent=2, default=str) + "\n").encode()
        print(f"json: {atomic_write_bytes(args.json, data, overwrite=args.overwrite)}", file=sys.stderr)
    if args.chart is not None:
        png = models_chart(results)
        print(f"chart: {atomic_write_bytes(args.chart, png, overwrite=args.overwrite)}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m scenewright.bench.models``); errors are raised."""
    parser = argparse.ArgumentParser(prog="scenewright bench")
    register(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(["models", *(argv or [])])
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
