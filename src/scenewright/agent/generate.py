"""``scenewright generate`` on the agent's pipeline: plan, route, render, verify, refine.

Writes ``image.png`` (with the plan and settings in its metadata), ``plan.json``, ``overlay.png``
(the plan's boxes over the image) and, when the strategy produced attention maps,
``attention.png`` into ``--out``, or into a fresh numbered folder (``out/0001``, ...) without it.
Several seeds (``--seeds 0-7``, ``--n-images 4``) share one loaded model, go to ``seed-N/``
subfolders and a labelled ``contact_sheet.png``; ``--grid`` renders an X/Y grid of settings
(:mod:`scenewright.agent.grid`). ``--seed -1`` draws the seed, prints it and records it. After
each render, one line per planned object says what was found. Never overwrites without ``--overwrite``; input errors are one line and
exit code 2, as everywhere in the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenewright.agent.grid import GRID_IMAGE, Axis, Cell, check_grid_options, grid_cells, grid_outputs
from scenewright.agent.options import (
    DEFAULT_REFINE_ROUNDS,
    add_image_options,
    add_llm_timeout,
    add_lora_option,
    llm_settings,
)
from scenewright.backends.specs import OFFLOAD_MODES, QUANTIZE_CHOICES
from scenewright.errors import InvalidInputError, ScenewrightError
from scenewright.terminal import process_seconds, show_progress

if TYPE_CHECKING:
    from scenewright.agent.core import Agent, AgentResult

OUTPUTS = ("image.png", "plan.json", "overlay.png", "attention.png")
SHEET = "contact_sheet.png"
# 128 + SIGINT: what a shell expects from a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    """Add ``generate`` to the CLI's sub-commands (nothing heavy is imported here)."""
    p = sub.add_parser("generate", help="render one request to an image, plan.json and metadata")
    p.add_argument("prompt", help='the request, e.g. "two red circles left of a blue square"')
    p.add_argument("--backend", default="tiny", help="tiny (default), flux-dev, flux-schnell, sd3, sd3.5-medium, "
                   "sd3.5-large, flux2-dev, flux2-klein, a Hugging Face id, or a local checkpoint folder")  # fmt: skip
    p.add_argument("--height", type=int, help="image height in pixels (default: the backend's)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the backend's)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the backend's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backend's)")
    p.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0; -1 draws one, printed and recorded)"
    )
    p.add_argument("--out", help="output folder (default: a fresh numbered folder, out/0001, out/0002, ...)")
    p.add_argument(
        "--seeds",
        metavar="LIST",
        help='several seeds, e.g. 0-7 or "0,3,5": one folder each and a contact sheet',
    )
    add_image_options(p)
    p.add_argument(
        "--grid", "--xy", action="append", metavar="AXIS=V1,V2",
        help="an X/Y grid over guidance, steps, seed or strategy, e.g. --grid seed=1,2,3 --grid "
        "strategy=vanilla,stitch (first: columns, second: rows): one folder a cell and a labelled grid.png",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    add_lora_option(p)
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16"
    )
    p.add_argument(
        "--cpu-offload", nargs="?", const="model", choices=OFFLOAD_MODES, default=None,
        help="keep weights on the CPU: 'model' (the default when given) moves each model to the GPU while it "
        "runs; 'sequential' streams layer by layer (slow, for cards smaller than the transformer)",
    )  # fmt: skip
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None,
                   help="load the transformer and large text encoder quantized: bnb-4bit, bnb-8bit (CUDA), "
                   "torchao-int8 (pip install 'scenewright[torchao]')")  # fmt: skip
    p.add_argument(
        "--quiet", action="store_true", help="print only results, warnings and errors (no progress bars)"
    )
    add_generate_options(p)
    p.set_defaults(handler=generate_command)


def add_generate_options(p: argparse.ArgumentParser) -> None:
    """The options ``generate`` gains from the agent (its existing ones stay as they are)."""
    p.add_argument(
        "--strategy", default="auto", help="auto (default) or a strategy name, e.g. vanilla, regional"
    )
    p.add_argument(
        "--planner", default="rules", choices=["rules", "llm"], help="rules (offline, default) or llm"
    )
    add_llm_timeout(p)
    p.add_argument(
        "--refine-rounds",
        type=int,
        default=DEFAULT_REFINE_ROUNDS,
        help=f"check-and-repair passes when the image differs from the plan (default "
        f"{DEFAULT_REFINE_ROUNDS}; each pass that keeps a repair writes OUT/refineN/)",
    )
    p.add_argument(
        "--sam",
        metavar="CHECKPOINT",
        help="segment refine's objects with SAM: a transformers SAM/SAM 2 folder or hub id, or a "
        "segment-anything .pth (vit_b:PATH when the name does not say; needs scenewright[sam]); "
        "default: the objects' attention maps",
    )
    p.add_argument(
        "--detector",
        metavar="CHECKPOINT",
        help="judge the image (and refine's rounds) with an OWLv2, Grounding DINO or Mask2Former "
        "folder or hub id; the embedded model keeps its exact evaluator",
    )
    p.add_argument(
        "--clip",
        metavar="CHECKPOINT",
        help="the CLIP that names colours for --detector (default openai/clip-vit-large-patch14)",
    )


@dataclass
class Checked:
    """What ``_precheck`` accepted: the prompt, the seeds, and warnings to print before rendering."""

    prompt: str
    seeds: list[int]
    warnings: list[str] = field(default_factory=list)
    tiny: bool = False
    drawn: bool = False  # --seed -1: the first seed was drawn at random
    axes: list[Axis] = field(default_factory=list)  # --grid: columns, then rows


def _precheck(args: argparse.Namespace) -> Checked:
    """Everything that can be refused before any weights load, refused now, and without torch
    (the device's presence, which needs it, is ``generate_command``'s next check)."""
    from scenewright.agent.bounds import check_refine_rounds, check_sampling
    from scenewright.agent.fit_checks import check_trained_size, trained_size
    from scenewright.agent.run_folders import DEFAULT_ROOT, choose_seeds
    from scenewright.backends.flux2_specs import check_strategy_options
    from scenewright.backends.specs import ALIASES, check_device_name, resolve_backend
    from scenewright.backends.z_image_rules import check_z_image_strategy
    from scenewright.executor.catalogue import check_strategy
    from scenewright.executor.limits import RANDOM_SEED, check_seed, resolve_seed
    from scenewright.tools.output import check_output_folder

    prompt = args.prompt.strip()
    if not prompt:
        raise InvalidInputError(
            "prompt", "is empty", 'describe the image, e.g. "two red circles left of a blue square"'
        )
    check_refine_rounds(getattr(args, "refine_rounds", DEFAULT_REFINE_ROUNDS))
    axes = check_grid_options(args)
    listed = getattr(args, "seeds", None)
    drawn = args.seed == RANDOM_SEED and listed is None and all(axis.name != "seed" for axis in axes)
    seeds = choose_seeds(resolve_seed(args.seed), listed, getattr(args, "n_images", None))
    for seed in seeds:
        check_seed(seed)
    spec = ALIASES.get(args.backend.strip()) or resolve_backend(args.backend)
    check_sampling(spec, args.steps, args.height, args.width, args.guidance, args.negative_prompt)
    warnings: list[str] = []
    trained = trained_size(spec.source) if spec.family == "tiny" else None
    if trained is not None:
        warnings = check_trained_size(spec.name, trained, args.height, args.width)
    resolve_backend(args.backend)
    check_device_name(args.device)
    check_strategy(getattr(args, "strategy", "auto"))
    check_z_image_strategy(spec, getattr(args, "strategy", "auto"))
    check_strategy_options(spec, getattr(args, "strategy", "auto"))
    check_output_folder(args.out if args.out is not None else DEFAULT_ROOT)
    return Checked(prompt, seeds, warnings, tiny=spec.family == "tiny", drawn=drawn, axes=axes)


def settle_turn(result: Any, command: str) -> bool:
    """Print a finished turn's notes as warnings; False when it was cancelled (and say so), a
    one-line error when it failed. Shared by generate and rerender."""
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if result.status == "cancelled":
        print("interrupted: the render was cancelled; nothing more was written", file=sys.stderr)
        return False
    if not result.ok:
        raise ScenewrightError(result.errors[0] if result.errors else f"{command}: {result.status}")
    return True


class _Bar:
    """A tqdm bar that follows the agent's events (percent of the current node); drawn only on a
    terminal (see :func:`scenewright.terminal.show_progress`)."""

    def __init__(self, quiet: bool, label: str = "") -> None:
        """Made before each render, when the model libraries are imported but (on the first
        render) not yet loading weights: ``show_progress`` switches their bars off in time."""
        from tqdm.auto import tqdm

        self.label = label
        drawn = show_progress(quiet)
        # Piped (a log, CI): one plain line a stage instead of a bar's fragments.
        self.plain = not quiet and not drawn
        self.stage = ""
        self.bar = tqdm(
            total=100,
            disable=not drawn,
            file=sys.stderr,
            leave=False,
            bar_format="{desc} {bar} {n:.0f}%",
        )

    def __call__(self, event: dict[str, Any]) -> None:
        node = str(event.get("node", ""))
        if self.plain and node and node != self.stage:
            self.stage = node
            print(f"{self.label}{node}", file=sys.stderr, flush=True)
        self.bar.set_description_str(f"{self.label}{node:>8}")
        self.bar.n = float(event.get("percent", 0.0))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _outputs(folder: Path, checked: Checked) -> list[Path]:
    seeds = checked.seeds
    if checked.axes:
        return grid_outputs(folder, checked.axes, OUTPUTS)
    if len(seeds) == 1:
        return [folder / name for name in OUTPUTS]
    return [folder / f"seed-{s}" / name for s in seeds for name in OUTPUTS] + [folder / SHEET]


def _agent(args: argparse.Namespace, out_dir: Path, seed: int) -> Agent:
    from scenewright.agent.bounds import check_refine_rounds
    from scenewright.agent.core import Agent

    agent = Agent(
        backend=args.backend,
        planner=getattr(args, "planner", "rules"),
        strategy="auto",
        steps=args.steps,
        height=args.height,
        width=args.width,
        guidance=args.guidance,
        seed=seed,
        out_dir=out_dir,
        max_refine_rounds=check_refine_rounds(getattr(args, "refine_rounds", DEFAULT_REFINE_ROUNDS)),
        device=args.device,
        dtype=args.dtype,
        negative_prompt=args.negative_prompt,
        cpu_offload=args.cpu_offload,
        quantize=args.quantize,
        flat_output=True,
        overwrite=args.overwrite,
        sam=getattr(args, "sam", None),
        llm_settings=llm_settings(args),
        loras=list(getattr(args, "lora", None) or []),
    )
    if getattr(args, "detector", None):
        from scenewright.agent.detection import attach_detector

        attach_detector(agent, args.detector, getattr(args, "clip", None), args.device)
    strategy = getattr(args, "strategy", "auto")
    if strategy != "auto":
        agent.set_strategy(strategy)
    return agent


def judge_result(agent: Agent, result: AgentResult) -> tuple[list[str], str]:
    """The per-object lines and the verdict of a finished render."""
    from scenewright.agent.object_report import exact_lines, row_lines, verdict
    from scenewright.backends.tiny import TinyBackend

    if result.plan is None:
        return [], verdict([], result.verified)
    if isinstance(agent.load_backend(), TinyBackend) and result.image is not None:
        lines = exact_lines(result.image, result.plan)
    else:
        lines = row_lines(result.plan, result.report)
    return [line.text for line in lines], verdict(lines, result.verified)


@contextmanager
def render_bar(quiet: bool, label: str = "") -> Iterator[_Bar]:
    """A progress bar for one render, closed however the render ends."""
    bar = _Bar(quiet, label)
    try:
        yield bar
    finally:
        bar.close()


def _render(agent: Agent, prompt: str, seed: int, quiet: bool, label: str = "") -> AgentResult:
    with render_bar(quiet, label) as bar:
        # A thread per seed: each render is a new request, never a follow-up of the previous seed.
        return agent.run(prompt, seed=seed, thread_id=f"seed-{seed}", on_event=bar)


def _render_seed(
    agent: Agent, final: Path, prompt: str, seed: int, args: argparse.Namespace, label: str
) -> AgentResult:
    """One seed of several, written whole or not at all (see :func:`_render_staged`)."""
    return _render_staged(
        agent, final, args.overwrite, lambda: _render(agent, prompt, seed, args.quiet, label)
    )


def _render_cell(
    agent: Agent, final: Path, prompt: str, cell: Cell, seed: int, args: argparse.Namespace, label: str
) -> AgentResult:
    """One cell of a grid, written whole or not at all (see :func:`_render_staged`)."""
    from scenewright.agent.grid import render_cell

    def render() -> AgentResult:
        with render_bar(args.quiet, label) as bar:
            return render_cell(agent, prompt, cell, seed, bar)

    return _render_staged(agent, final, args.overwrite, render)


def _render_staged(
    agent: Agent, final: Path, overwrite: bool, render: Callable[[], AgentResult]
) -> AgentResult:
    """One render of several (refine rounds included) into a staging folder that becomes
    ``final`` only when the turn is done; a failed, cancelled or interrupted one leaves no
    folder, so the folders on disk are exactly the finished renders."""
    from scenewright.tools.output import staged_folder

    with staged_folder(final, overwrite) as stage:
        agent.tools.out_dir = stage.path
        result = render()
        stage.keep = result.ok
    staged = str(stage.path)
    result.paths = {kind: path.replace(staged, str(final), 1) for kind, path in result.paths.items()}
    return result


def generate_command(args: argparse.Namespace) -> int:
    """One request to files in ``--out`` (or a fresh numbered folder) through the agent's graph."""
    from scenewright.agent.contact_sheet import Tile, write_contact_sheet
    from scenewright.agent.fit_checks import background_note
    from scenewright.agent.run_folders import DEFAULT_ROOT, fresh_run_folder
    from scenewright.tools.output import check_free

    show_progress(args.quiet)
    checked = _precheck(args)
    if args.out is not None:
        check_free(_outputs(Path(args.out), checked), args.overwrite)
    from scenewright.backends.registry import resolve_device  # torch: after the quick checks

    resolve_device(args.device)
    # The agent first: a bad --strategy or --sam is refused before a numbered folder is taken.
    agent = _agent(args, Path(args.out) if args.out is not None else DEFAULT_ROOT, checked.seeds[0])
    folder = Path(args.out) if args.out is not None else fresh_run_folder(DEFAULT_ROOT)
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{'folder:':<10} {folder}", flush=True)
    if checked.drawn:
        print(
            f"{'seed:':<10} {checked.seeds[0]} (drawn for --seed -1; --seed {checked.seeds[0]} renders it again)"
        )
    if checked.axes:
        return _generate_grid(agent, folder, checked, args)
    several = len(checked.seeds) > 1
    tiles: list[Tile] = []
    try:
        for index, seed in enumerate(checked.seeds):
            label = f"seed {seed} ({index + 1}/{len(checked.seeds)}) " if several else ""
            if several:
                result = _render_seed(agent, folder / f"seed-{seed}", checked.prompt, seed, args, label)
            else:
                agent.tools.out_dir = folder
                result = _render(agent, checked.prompt, seed, args.quiet, label)
            if not settle_turn(result, "generate"):
                return EXIT_INTERRUPTED
            if index == 0 and result.plan is not None and checked.tiny:
                dropped = background_note(result.plan.background, agent.backend_name)
                if dropped:
                    print(f"warning: {dropped}", file=sys.stderr)
            lines, said = judge_result(agent, result)
            if several:
                print(f"seed {seed}: {said}")
                print(f"  {'image:':<10} {result.paths.get('image', '')}")
            else:
                for kind, path in result.paths.items():
                    print(f"{kind + ':':<10} {path}")
            for line in lines:
                print(f"  {line}" if several else line)
            if not several:
                print(f"verdict:   {said}")
            if result.image is not None:
                tiles.append(Tile(result.image, seed, said))
    except BaseException:
        if args.out is None and not any(folder.iterdir()):
            folder.rmdir()  # nothing was written: the number stays free
        raise
    finally:
        agent.close()
    if several:
        sheet = write_contact_sheet(tiles, folder / SHEET, title=f"{checked.prompt} ({agent.backend_name})")
        matched = sum(t.verdict == "matches the plan" for t in tiles)
        print(f"{'sheet:':<10} {sheet}")
        print(f"verdict:   {matched}/{len(tiles)} seeds match the plan")
    if not args.quiet:
        print(
            f"done in {process_seconds():.1f}s ({agent.backend_name}, "
            f"{'seeds ' + ','.join(map(str, checked.seeds)) if several else 'seed ' + str(checked.seeds[0])})",
            file=sys.stderr,
        )
    return 0


def _generate_grid(agent: Agent, folder: Path, checked: Checked, args: argparse.Namespace) -> int:
    """Render every cell of ``--grid`` into a folder of its own, then ``grid.png``."""
    from scenewright.agent.contact_sheet import VERDICT_COLOURS
    from scenewright.agent.grid import print_cell
    from scenewright.tools.grid import GridCell, write_xy_grid

    cells = list(grid_cells(checked.axes))
    drawn: dict[tuple[int, int], GridCell] = {}
    try:
        for index, cell in enumerate(cells, start=1):
            label = f"cell {index}/{len(cells)} "
            result = _render_cell(
                agent, folder / cell.folder_name(), checked.prompt, cell, checked.seeds[0], args, label
            )
            if not settle_turn(result, "generate"):
                return EXIT_INTERRUPTED
            lines, said = judge_result(agent, result)
            print_cell(index, len(cells), cell, said, result.paths.get("image", ""))
            for line in lines:
                print(f"  {line}")
            if result.image is not None:
                drawn[cell.row, cell.column] = GridCell(
                    result.image, said, VERDICT_COLOURS.get(said, (235, 235, 235))
                )
    except BaseException:
        if args.out is None and not any(folder.iterdir()):
            folder.rmdir()  # nothing was written: the number stays free
        raise
    finally:
        agent.close()
    columns, rows = checked.axes[0], checked.axes[1] if len(checked.axes) > 1 else None
    blank = GridCell(_blank(drawn), "no image")
    table = [
        [drawn.get((row, column), blank) for column in range(len(columns.values))]
        for row in range(len(rows.values) if rows else 1)
    ]
    grid = write_xy_grid(
        table,
        folder / GRID_IMAGE,
        [columns.label(value) for value in columns.values],
        [rows.label(value) for value in rows.values] if rows else [],
        title=f"{checked.prompt} ({agent.backend_name})",
        overwrite=args.overwrite,
    )
    matched = sum(cell.caption == "matches the plan" for cell in drawn.values())
    print(f"{'grid:':<10} {grid}")
    print(f"verdict:   {matched}/{len(cells)} cells match the plan")
    if not args.quiet:
        print(f"done in {process_seconds():.1f}s ({agent.backend_name}, {len(cells)} cells)", file=sys.stderr)
    return 0


def _blank(drawn: dict[tuple[int, int], Any]) -> Any:
    """A black cell the size of the others, for a cell that gave no image."""
    from PIL import Image

    size = next((cell.image.size for cell in drawn.values()), (64, 64))
    return Image.new("RGB", size)
