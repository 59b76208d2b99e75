"""``scenewright rerender IMAGE.png``: the image again, from the plan and settings in its metadata.

Every PNG we write carries its plan, sampling settings, backend and strategy (see
:mod:`scenewright.tools.output`); rendering that plan with those settings on the same backend,
device and dtype gives the same pixels. A strategy chosen by ``auto`` is chosen again by auto
(the choice is a function of the plan), so the route is reproduced as well as the image.

The PNG may be someone else's: its metadata goes through :mod:`scenewright.untrusted` (size,
depth, strict types), its settings meet ``generate``'s bounds, and a backend it names is loaded
only when it is one of our names, unless ``--allow-backend-from-metadata`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from scenewright.agent.bounds import MAX_NEGATIVE_CHARS
from scenewright.errors import InvalidInputError
from scenewright.terminal import show_progress
from scenewright.untrusted import load_model, parse_seed

# A backend name, hub id or folder path; longer is no path any file system takes.
MAX_BACKEND_CHARS = 1000
# Seeds follow the one rule of every face (whole numbers, "7" accepted, 3.9 refused).
Seed = Annotated[int, BeforeValidator(parse_seed)]

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
    p.add_argument(
        "--allow-backend-from-metadata",
        action="store_true",
        help="load the hub id or folder the image's metadata names (default: only our backend names; "
        "the image may come from someone else)",
    )
    p.set_defaults(handler=rerender_command)


class RecipeSettings(BaseModel):
    """The sampling settings of a recipe, typed strictly: a height of "64" or a steps of 2.5 is
    someone else's file, not ours, and is refused rather than coerced."""

    model_config = ConfigDict(extra="ignore")

    steps: StrictInt | None = None
    height: StrictInt | None = None
    width: StrictInt | None = None
    guidance: StrictFloat | StrictInt | None = None
    negative_prompt: StrictStr = Field(default="", max_length=MAX_NEGATIVE_CHARS)
    seed: Seed = 0


class RecipeLora(BaseModel):
    """A LoRA the image was rendered with: where it was, its content's hash, its scale."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(min_length=1, max_length=64)
    source: StrictStr = Field(min_length=1, max_length=MAX_BACKEND_CHARS)
    sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    scale: StrictFloat | StrictInt = 1.0
    shipped: bool = False


class RecipeBackend(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(default="tiny", min_length=1, max_length=MAX_BACKEND_CHARS)
    dtype: StrictStr | None = Field(default=None, max_length=16)
    loras: list[RecipeLora] = Field(default_factory=list, max_length=32)


class Recipe(BaseModel):
    """What ``rerender`` reads from a PNG: the plan (validated later, by the agent, as any plan
    is), the settings, the backend and the strategy."""

    model_config = ConfigDict(extra="ignore")

    plan: dict[str, Any]
    settings: RecipeSettings
    backend: RecipeBackend = Field(default_factory=RecipeBackend)
    strategy: StrictStr = Field(default="", max_length=200)


def read_recipe(path: Path) -> Recipe:
    """The metadata of ``path`` as a :class:`Recipe`, refused in one line when it is not one of
    our PNGs or any field has the wrong type or size."""
    from PIL import UnidentifiedImageError

    from scenewright.tools.output import read_png_metadata

    if not path.is_file():
        raise InvalidInputError("image", f"{path} is not a file", "give a PNG written by scenewright")
    try:
        meta = read_png_metadata(path)
    except InvalidInputError as error:  # metadata too big, too deep, or not JSON
        raise InvalidInputError("image", f"{path}: its metadata {error.problem}", error.fix) from None
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidInputError(
            "image", f"{path} is not a readable image", "give a PNG written by scenewright"
        ) from error
    except ValueError as error:  # no metadata chunk
        raise InvalidInputError(
            "image",
            f"{path} carries no scenewright metadata (plan and settings)",
            "give a PNG written by scenewright",
        ) from error
    if not isinstance(meta.get("plan"), dict) or not isinstance(meta.get("settings"), dict):
        raise InvalidInputError(
            "image", f"{path} has metadata without a plan and settings", "give a PNG written by scenewright"
        )
    recipe = load_model(meta, Recipe, "image", "give a PNG written by scenewright")
    if recipe.strategy.split(":")[0] == "refine":
        raise InvalidInputError(
            "image",
            f"{path} is a refine round, which repaired an earlier image",
            "rerender the image it refined (the folder above) with the same --refine-rounds",
        )
    return recipe


def choose_backend(given: str | None, recorded: str, allow_recorded: bool) -> str:
    """The backend to load: the user's ``--backend``, else the recorded one when it is a name of
    ours. A recorded hub id or folder is someone else's choice of code and weights to load (a
    download on a networked machine, a folder's pipeline class): refused unless the user allows it."""
    from scenewright.backends import ALIASES

    if given:
        return given
    if recorded.strip() in ALIASES or allow_recorded:
        return recorded.strip()
    raise InvalidInputError(
        "backend",
        f"the image's metadata names {recorded[:120]!r}, which is a hub id or folder, not a backend of ours",
        "pass --backend NAME_OR_FOLDER yourself, or --allow-backend-from-metadata to load the recorded one",
    )


def recorded_loras(loras: list[RecipeLora], backend: str, allow_hub: bool = False) -> list[Any]:
    """The ``--lora`` specs that render the image again: each recorded LoRA found where it was
    (a shipped one beside the model), its content hashed the same; else one line naming it. A hub
    id is fetched only with ``allow_hub`` (the metadata may be someone else's)."""
    from scenewright.backends.lora_files import (
        LoraSpec,
        check_scale,
        file_sha256,
        inspect_lora,
        shipped_loras,
    )
    from scenewright.backends.specs import EMBEDDED_MODEL_DIR, resolve_backend

    specs = []
    for lora in loras:
        field = f"lora {lora.name}"
        if lora.shipped:
            source = resolve_backend(backend).source
            path = shipped_loras(Path(source) if source else EMBEDDED_MODEL_DIR).get(lora.name)
            if path is None:
                raise InvalidInputError(
                    field, f"the image used the LoRA shipped as {lora.name!r}, which {backend} no longer ships",
                    "rerender with the version that wrote the image",
                )  # fmt: skip
            digest = file_sha256(path)
        else:
            if not allow_hub and not Path(lora.source).expanduser().exists():
                raise InvalidInputError(
                    field, f"the image used {lora.source[:200]}, which is missing here",
                    "put the LoRA file back where it was (or pass --allow-backend-from-metadata for a hub id)",
                )  # fmt: skip
            spec = LoraSpec(lora.source, lora.name, check_scale(lora.scale, f"{field} scale"))
            try:
                digest = inspect_lora(spec, field=field).sha256
            except InvalidInputError as error:
                raise InvalidInputError(
                    field, f"the image used {lora.source}, which is missing here ({error.problem})",
                    "put the LoRA back where it was, then rerender",
                ) from None  # fmt: skip
            specs.append(spec)
        if digest != lora.sha256:
            raise InvalidInputError(
                field, f"{lora.source} is not the file the image used (its content hash differs)",
                "use the LoRA file the image was rendered with",
            )  # fmt: skip
    return specs


def replay_strategy(recorded: str) -> str:
    """The strategy to ask for: ``auto`` again when auto chose, else the recorded name."""
    return "auto" if not recorded or recorded.startswith("auto") else recorded


def rerender_command(args: argparse.Namespace) -> int:
    """Render the recorded plan with the recorded settings; print where and how it came out."""
    from scenewright.agent.bounds import check_sampling
    from scenewright.agent.core import Agent
    from scenewright.agent.generate import OUTPUTS, judge_result, render_bar, settle_turn
    from scenewright.agent.run_folders import DEFAULT_ROOT, fresh_run_folder
    from scenewright.backends import ALIASES, resolve_backend
    from scenewright.tools.output import check_free, check_output_folder

    show_progress(args.quiet)
    recipe = read_recipe(Path(args.image))
    settings = recipe.settings
    backend = choose_backend(args.backend, recipe.backend.name, args.allow_backend_from_metadata)
    spec = ALIASES.get(backend.strip()) or resolve_backend(backend)
    check_sampling(
        spec, settings.steps, settings.height, settings.width, settings.guidance, settings.negative_prompt
    )
    loras = recorded_loras(recipe.backend.loras, backend, args.allow_backend_from_metadata)
    check_output_folder(args.out if args.out is not None else DEFAULT_ROOT)
    if args.out is not None:
        folder = Path(args.out)
        check_free([folder / name for name in OUTPUTS], args.overwrite)
    else:
        folder = fresh_run_folder(DEFAULT_ROOT)
    print(f"{'folder:':<10} {folder}", flush=True)
    agent = Agent(
        backend=backend,
        steps=settings.steps,
        height=settings.height,
        width=settings.width,
        guidance=None if settings.guidance is None else float(settings.guidance),
        negative_prompt=settings.negative_prompt,
        seed=settings.seed,
        out_dir=folder,
        max_refine_rounds=0,
        device=args.device,
        dtype=args.dtype or recipe.backend.dtype or "auto",
        flat_output=True,
        overwrite=args.overwrite,
        loras=loras,
    )
    recorded = recipe.strategy
    try:
        with render_bar(args.quiet) as bar:
            result = agent.render_plan(
                recipe.plan,
                seed=settings.seed,
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
