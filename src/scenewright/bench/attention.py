"""``scenewright bench attention``: what regional attention costs per denoising step.

A randomly initialised FLUX-class block stack (scaled to the machine: by default 1024 image
tokens, 128 text tokens a prompt) runs one transformer pass per configuration, measured side by
side in one process: vanilla with the base prompt only, vanilla over the same joint sequence as
the regional run (every regional prompt plus the base prompt, plain attention), and the regional
run on each kernel. Ratios are printed against both vanillas; time is the fastest of the repeats
(CPU time of one thread on a CPU, so other work on the machine does not count; wall time on
CUDA), memory the peak resident (CPU) or allocated (CUDA) growth during a pass. A progress line
per configuration goes to stderr (``--quiet`` silences it), a legend follows the table, and
``--chart`` draws the time and memory ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REGION_COUNTS = (1, 2, 4, 8, 16)
LEGEND = (
    "Legend: regions: region prompts; text: text tokens in the joint sequence (one prompt per region "
    "plus the base prompt); base ms: vanilla attention with the base prompt only; same ms: vanilla "
    "attention over the same joint sequence as the regional pass; <kernel> ms: the regional pass on "
    "that kernel; x same: its time divided by same ms (the cost of the regional mask alone); x base: "
    "divided by base ms (the cost of regional prompting against a plain render); mem x: its peak "
    "memory divided by vanilla's on the same sequence. ms: one transformer pass, the fastest of "
    "--repeats (CPU time of one thread on a CPU, wall time on CUDA); memory: peak growth during a "
    "pass (resident size on a CPU, allocator on CUDA)."
)


@dataclass
class BenchConfig:
    """The geometry and the measurement plan."""

    image_tokens: int = 1024
    text_tokens: int = 128
    regions: Sequence[int] = REGION_COUNTS
    heads: int = 4
    head_dim: int = 64
    double_blocks: int = 2
    single_blocks: int = 4
    kernels: Sequence[str] = ("dense", "segments", "flex")
    repeats: int = 3
    base_ratio: float = 0.3
    device: str = "cpu"
    dtype: str = "float32"
    flex_block_size: int = 128
    threads: int = 1
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _grid(tokens: int) -> tuple[int, int]:
    rows = int(math.sqrt(tokens))
    while tokens % rows:
        rows -= 1
    return rows, tokens // rows


def region_boxes(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` boxes tiling the image (1x1, 1x2, 2x2, 2x4, 4x4, ...)."""
    rows = 2 ** (int(math.log2(count)) // 2) if count & (count - 1) == 0 else 1
    cols = count // rows
    return [(c / cols, r / rows, (c + 1) / cols, (r + 1) / rows) for r in range(rows) for c in range(cols)]


class _PeakMemory:
    """Peak memory growth during a block of code: CUDA's allocator, or resident size on a CPU."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> _PeakMemory:
        import torch

        _return_freed_memory()
        self._done = threading.Event()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = self._rss()
            self._max = self._base

            def poll() -> None:
                while not self._done.is_set():
                    self._max = max(self._max, self._rss())
                    time.sleep(0.0005)

            self._thread = threading.Thread(target=poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        else:
            self._done.set()
            self._thread.join()
            self._max = max(self._max, self._rss())
            self.peak = self._max - self._base


def _return_freed_memory() -> None:
    """Make glibc hand big freed blocks back to the OS, so resident size follows live tensors."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD: blocks over 64 KiB are mapped and unmapped
        libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
    except OSError:  # not glibc: the figures are then upper bounds
        pass


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure_side_by_side(
    variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]]], repeats: int, device: Any
) -> dict[str, dict[str, Any]]:
    """Time every variant in turn, ``repeats`` rounds, so that they share the machine's conditions.

    ``variants`` maps a name to (context factory, pass). Each is warmed up first (compilation,
    caches), then timed round-robin; memory is a separate pass per variant, with a poller that
    would otherwise perturb the timing. Ratios use the fastest round (least disturbed by other
    work on the machine); the median is kept too.
    """
    # On a CPU, the process's CPU time (one thread) is what a step costs whoever else shares the
    # machine; wall time is kept beside it. On CUDA, synchronised wall time.
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    results: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = {name: [] for name in variants}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for name, (context, run) in variants.items():
        with context():
            start = time.perf_counter()
            run()
            _sync(device)
            results[name] = {"first_seconds": time.perf_counter() - start}
    for _ in range(repeats):
        for name, (context, run) in variants.items():
            with context():
                _sync(device)
                start, wall = clock(), time.perf_counter()
                run()
                _sync(device)
                times[name].append(clock() - start)
                walls[name].append(time.perf_counter() - wall)
    for name, (context, run) in variants.items():
        with context(), _PeakMemory(device) as memory:
            run()
        results[name].update(
            seconds=min(times[name]),
            median_seconds=statistics.median(times[name]),
            wall_seconds=min(walls[name]),
            peak_bytes=float(memory.peak),
        )
    return results


def run_bench(config: BenchConfig, log: Callable[[str], None] = print, quiet: bool = False) -> dict[str, Any]:
    """Measure every configuration; returns the JSON-ready results. ``log`` gets the table's
    lines, stderr one progress line per configuration unless ``quiet``."""
    import torch
    from diffusers import FluxTransformer2DModel

    from scenewright.backends.flux import flux_image_ids
    from scenewright.bench.progress import Progress
    from scenewright.executor.attention.edits import RegionMask
    from scenewright.executor.attention.engine import AttentionEngine
    from scenewright.executor.attention.install import installed

    device = torch.device(config.device)
    dtype = getattr(torch, config.dtype)
    if config.threads > 0:
        # One thread by default: on a shared CPU, thread pools of eager ops and compiled kernels
        # spin against each other and against other work, which swamps the differences measured.
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dim = config.heads * config.head_dim
    rope = config.head_dim // 8 * 3
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=config.double_blocks,
        num_single_layers=config.single_blocks,
        attention_head_dim=config.head_dim,
        num_attention_heads=config.heads,
        joint_attention_dim=dim,
        pooled_projection_dim=dim,
        guidance_embeds=False,
        axes_dims_rope=(config.head_dim - 2 * rope, rope, rope),
    )
    transformer = transformer.to(device=device, dtype=dtype).eval()
    grid = _grid(config.image_tokens)
    latents = torch.randn(1, config.image_tokens, 64, device=device, dtype=dtype)
    pooled = torch.randn(1, dim, device=device, dtype=dtype)
    image_ids = flux_image_ids(*grid, device=device, dtype=dtype)
    timestep = torch.tensor([0.7], device=device, dtype=dtype)

    def step(text: torch.Tensor) -> Callable[[], torch.Tensor]:
        text_ids = torch.zeros(text.shape[1], 3, device=device, dtype=dtype)

        @torch.no_grad()
        def run() -> torch.Tensor:
            return transformer(
                hidden_states=latents,
                timestep=timestep,
                pooled_projections=pooled,
                encoder_hidden_states=text,
                txt_ids=text_ids,
                img_ids=image_ids,
                return_dict=False,
            )[0]

        return run

    results: list[dict[str, Any]] = []
    prompts = torch.randn(1, config.text_tokens * (max(config.regions) + 1), dim, device=device, dtype=dtype)
    header = " | ".join(f"{k + ' ms':>12} {'x same':>6} {'x base':>6} {'mem x':>5}" for k in config.kernels)
    log(f"{'regions':>7} {'text':>5} | {'base ms':>8} {'same ms':>8} | {header}")
    meter = Progress(len(config.regions), quiet=quiet)
    for count in config.regions:
        text_len = config.text_tokens * (count + 1)
        meter.step(
            f"{count} region{'s' if count > 1 else ''}, {text_len} text tokens: 2 vanillas and "
            f"{', '.join(config.kernels)}, {config.repeats} timed repeat{'s' if config.repeats != 1 else ''} each"
        )
        text = prompts[:, :text_len]
        region = RegionMask.from_lengths(
            [config.text_tokens] * count,
            region_boxes(count),
            base_length=config.text_tokens,
            base_ratio=config.base_ratio,
        )
        engines = {
            kernel: AttentionEngine(
                [region], kernel=kernel, flex_block_size=config.flex_block_size, flex_compile=True
            )
            for kernel in config.kernels
        }
        for engine in engines.values():
            engine.begin(grid, 1)
        variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            "vanilla_base_only": (contextlib.nullcontext, step(prompts[:, : config.text_tokens])),
            "vanilla_same_sequence": (contextlib.nullcontext, step(text)),
        }
        for kernel, engine in engines.items():
            variants[kernel] = (functools.partial(installed, transformer, engine), step(text))
        measured = _measure_side_by_side(variants, config.repeats, device)
        base, same = measured["vanilla_base_only"], measured["vanilla_same_sequence"]
        row: dict[str, Any] = {"regions": count, "text_tokens": text_len, **measured}
        outputs = {}
        for kernel, engine in engines.items():
            with installed(transformer, engine):
                outputs[kernel] = step(text)().float()
            entry = next(v for k, v in engine.cache.items() if k[0] == "region")
            info = row[kernel]
            info["mask_density"] = entry["layout"].density()
            flex = entry.get(("flex", dtype))
            if flex is not None:
                info["block_density"] = flex.density()
            info["kernels_used"] = sorted(engine.kernels_used)
            info["x_vanilla_same_sequence"] = info["seconds"] / same["seconds"]
            info["x_vanilla_base_only"] = info["seconds"] / base["seconds"]
            info["memory_x_same_sequence"] = _ratio(info["peak_bytes"], same["peak_bytes"])
            info["memory_x_base_only"] = _ratio(info["peak_bytes"], base["peak_bytes"])
        reference = next(iter(outputs.values()))
        row["max_relative_difference_to_first_kernel"] = {
            k: float((o - reference).abs().max() / reference.abs().max()) for k, o in outputs.items()
        }
        results.append(row)
        log(
            f"{count:>7} {text_len:>5} | {base['seconds'] * 1e3:>8.1f} {same['seconds'] * 1e3:>8.1f} | "
            + " | ".join(
                f"{row[k]['seconds'] * 1e3:>12.1f} {row[k]['x_vanilla_same_sequence']:>6.2f} "
                f"{row[k]['x_vanilla_base_only']:>6.2f} {row[k]['memory_x_same_sequence']:>5.2f}"
                for k in config.kernels
            )
        )
    import torch as _torch

    return {
        "config": asdict(config),
        "torch": _torch.__version__,
        "threads": _torch.get_num_threads(),
        "device_name": _torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "timing": "seconds: fastest round-robin repeat, CPU time of one thread on a CPU (wall on CUDA)",
        "legend": LEGEND,
        "results": results,
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def register(bench_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``attention`` to the ``scenewright bench`` sub-commands."""
    p = bench_subparsers.add_parser(
        "attention", help="per-step time and memory of regional vs vanilla attention"
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--image-tokens", type=int, default=1024, help="image tokens (default 1024, a 32x32 grid)")
    p.add_argument("--text-tokens", type=int, default=128, help="text tokens a prompt (default 128)")
    p.add_argument("--regions", default="1,2,4,8,16", help="region counts (default 1,2,4,8,16)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (FLUX.1: 24)")
    p.add_argument("--head-dim", type=int, default=64, help="head size (FLUX.1: 128)")
    p.add_argument("--double-blocks", type=int, default=2, help="double-stream blocks (FLUX.1: 19)")
    p.add_argument("--single-blocks", type=int, default=4, help="single-stream blocks (FLUX.1: 38)")
    p.add_argument("--kernels", default="dense,segments,flex", help="kernels to compare (default: all three)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per configuration (default 3)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16")
    p.add_argument("--flex-block-size", type=int, default=128, help="BlockMask block size (default 128)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1; 0 keeps torch's)")
    p.add_argument("--chart", type=Path, help="write a bar chart PNG of the time and memory ratios here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=bench_attention_command)
    return p


def bench_attention_command(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; print the table, optionally write JSON and a chart."""
    from scenewright.bench.charts import attention_chart, have_matplotlib, write_png
    from scenewright.errors import InvalidInputError

    config = BenchConfig(
        image_tokens=args.image_tokens,
        text_tokens=args.text_tokens,
        regions=[int(r) for r in args.regions.split(",")],
        heads=args.heads,
        head_dim=args.head_dim,
        double_blocks=args.double_blocks,
        single_blocks=args.single_blocks,
        kernels=[k.strip() for k in args.kernels.split(",")],
        repeats=args.repeats,
        device=args.device,
        dtype=args.dtype,
        flex_block_size=args.flex_block_size,
        threads=args.threads,
    )
    if args.chart is not None and args.chart.is_dir():
        raise InvalidInputError("chart", f"{args.chart} is a folder", "give a file path ending in .png")
    chart = args.chart if args.chart is not None and have_matplotlib() else None
    results = run_bench(config, quiet=args.quiet)
    print("\n" + LEGEND)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results: {args.json}", file=sys.stderr)
    if chart is not None:
        print(f"chart: {write_png(chart, attention_chart(results))}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m scenewright.bench.attention``)."""
    parser = argparse.ArgumentParser(prog="scenewright bench")
    register(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
