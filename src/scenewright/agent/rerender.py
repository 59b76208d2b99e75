"""``scenewright rerender IMAGE.png``: the image again, from the plan and settings in its metadata.

Every PNG we write carries its plan, sampling settings, backend and strategy (see
:mod:`scenewright.tools.output`); rendering that plan with those settings on the same backend,
device and dtype gives the same pixels. A strategy chosen by ``auto`` is chosen again by auto
(the choice is a function of the plan), so the route is reproduced as well as the image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError
from scenewright.terminal import silence_library_bars

EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    """Add ``rerender`` to the CLI's sub-commands."""
    p = sub.add_parser("rerender", help="reproduce an image from the plan and settings in its PNG metadata")
    p.add_argument("image", metavar="IMAGE.png", help="a PNG written by generate, chat, serve or batch")
    p.add_argument("--out", help="output folder (default: a fresh numbered folder, out/0001, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.add_argument("--backend", help="render on another backend (default: the one recorded)")
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument("--dtype", help="float32, bfloat16, float16 (default: the one recorded)")
    p.add_argument("--quiet", action="store_true", help="print only results, warnings and errors")
    p.set_defaults(handler=rerender_command)


def read_recipe(path: Path) -> dict[str, Any]:
    """The metadata of ``path``, refused in one line when it is not one of our PNGs."""
    from PIL import UnidentifiedImageError

    from scenewright.tools.output import read_png_metadata

    if not path.is_file():
        raise InvalidInputError("image", f"{path} is not a file", "give a PNG written by scenewright")
    try:
        meta = read_png_metadata(path)
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidInputError(
            "image", f"{path} is not a readable image", "give a PNG written by scenewright"
        ) from error
    except ValueError as error:  # no metadata chunk, or one that is not JSON
        raise InvalidInputError(
            "image",
            f"{path} carries no scenewright metadata (plan and settings)",
            "give a PNG written by scenewright",
        ) from error
    if not isinstance(meta.get("plan"), dict) or not isinstance(meta.get("settings"), dict):
        raise InvalidInputError(
            "image", f"{path} has metadata without a plan and settings", "give a PNG written by scenewright"
        )
    if str(meta.get("strategy", "")).split(":")[0] == "refine":
        raise InvalidInputError(
            "image",
            f"{path} is a refine round, which repaired an earlier image",
            "rerender the image it refined (the folder above) with the same --refine-rounds",
        )
    return meta


def replay_strategy(recorded: str) -> str:
    """The strategy to ask for: ``auto`` again when auto chose, else the recorded name."""
    return "auto" if not recorded or recorded.startswith("auto") else recorded


def rerender_command(args: argparse.Namespace) -> int:
    """Render the recorded plan with the recorded settings; print where and how it came out."""
    from scenewright.agent.core import Agent
    from scenewright.agent.generate import OUTPUTS, judge_result, render_bar, settle_turn
    from scenewright.agent.run_folders import DEFAULT_ROOT, fresh_run_folder
    from scenewright.tools.output import check_free, check_output_folder

    if args.quiet:
        silence_library_bars()
    meta = read_recipe(Path(args.image))
    settings = meta["settings"]
    backend = args.backend or str(meta.get("backend", {}).get("name") or "tiny")
    check_output_folder(args.out if args.out is not None else DEFAULT_ROOT)
    if args.out is not None:
        folder = Path(args.out)
        check_free([folder / name for name in OUTPUTS], args.overwrite)
    else:
        folder = fresh_run_folder(DEFAULT_ROOT)
    print(f"{'folder:':<10} {folder}", flush=True)
    agent = Agent(
        backend=backend,
        steps=settings.get("steps"),
        height=settings.get("height"),
        width=settings.get("width"),
        guidance=settings.get("guidance"),
        negative_prompt=str(settings.get("negative_prompt") or ""),
        seed=int(settings.get("seed", 0)),
        out_dir=folder,
        max_refine_rounds=0,
        device=args.device,
        dtype=args.dtype or str(meta.get("backend", {}).get("dtype") or "auto"),
        flat_output=True,
        overwrite=args.overwrite,
    )
    recorded = str(meta.get("strategy", ""))
    try:
        with render_bar(args.quiet) as bar:
            result = agent.render_plan(
                meta["plan"],
                seed=int(settings.get("seed", 0)),
                strategy=replay_strategy(recorded),
                on_event=bar,
            )
        if not settle_turn(result, "rerender"):
            return EXIT_INTERRUPTED
        if recorded and result.strategy != recorded:
            print(f"warning: strategy: recorded {recorded}, rendered with {result.strategy}", file=sys.stderr)
        for kind, path in result.paths.items():
            print(f"{kind + ':':<10} {path}")
        lines, said = judge_result(agent, result)
    finally:
        agent.close()
    for line in lines:
        print(line)
    print(f"verdict:   {said}")
    return 0
