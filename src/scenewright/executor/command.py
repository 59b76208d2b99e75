"""``scenewright strategies [NAME]``: each strategy's options, with meaning, range and default on
every backend, and the presets that set them. Reads the torch-free catalogue and the presets'
files only, so it answers at once."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from scenewright.executor import catalogue, presets
from scenewright.executor.catalogue import OPTIONS, ORIGINS, SUMMARIES, Option

ORIGIN_TITLES = {
    catalogue.PAPER: "the paper's options",
    catalogue.OURS: "our own",
    catalogue.TUNING: "tuning (set by a backend's preset; rarely worth setting by hand)",
}
WIDTH = 100


def register(sub: Any) -> None:
    """Add ``strategies`` to the CLI's sub-commands."""
    p = sub.add_parser(
        "strategies", help="each strategy's options: meaning, range, default on each backend, and the presets"
    )
    p.add_argument("name", nargs="?", help="one strategy (e.g. stitch); all when left out")
    p.set_defaults(handler=strategies_command)


def backends_by_preset() -> dict[str, list[str]]:
    """Preset name -> the ``--backend`` names that run it unasked, and "" -> those that run none.

    An embedded model runs the preset in its own folder; another family the preset in the
    folder named after it (``models/flux``)."""
    from scenewright.backends.specs import ALIASES, EMBEDDED_MODEL_DIR

    of_folder = presets.folders()
    found: dict[str, list[str]] = {name: [] for name in presets.presets()}
    found[""] = []
    for spec in ALIASES.values():
        if spec.family == "tiny":
            folder = Path(spec.source).name if spec.source else EMBEDDED_MODEL_DIR.name
        else:
            folder = spec.family
        found[of_folder.get(folder, "")].append(spec.name)
    return {name: list(dict.fromkeys(backends)) for name, backends in found.items()}


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def option_lines(strategy: str, key: str, option: Option) -> list[str]:
    """One option: its name, range and default, what each preset sets it to, and its meaning."""
    tuned = []
    for name, tuning in presets.presets().items():
        value = tuning.get(strategy, {}).get(key)
        if value is not None:
            tuned.append(f"{name} {_value(value)}")
    head = f"    {key} = {_value(option.default)}   ({catalogue.range_text(option)})"
    if tuned:
        head += f"   presets: {', '.join(tuned)}"
    meaning = textwrap.wrap(option.meaning.replace("`", ""), WIDTH - 8)
    return [head, *(f"        {line}" for line in meaning)]


def strategy_lines(strategy: str) -> list[str]:
    """A strategy: what it does, then its options by origin, then what presets compose with it."""
    lines = [f"{strategy}: {SUMMARIES[strategy]}"]
    options = OPTIONS[strategy]
    if not options:
        lines.append("    no options")
    for origin in ORIGINS:
        mine = {key: option for key, option in options.items() if option.origin == origin}
        if mine:
            lines.append(f"  {ORIGIN_TITLES[origin]}")
            for key, option in mine.items():
                lines.extend(option_lines(strategy, key, option))
    for name, tuning in presets.presets().items():
        for composed, entries in tuning.items():
            if composed.partition("+")[0] == strategy and composed != strategy:
                overrides = ", ".join(f"{k}={_value(v)}" for k, v in entries.items())
                lines.append(f"  {composed} with preset {name}: {overrides}")
    return lines


def preset_lines() -> list[str]:
    """Which backend runs which preset, and how to pick another or none."""
    lines = ["presets (each backend runs its own unasked; S:preset=NAME picks another, S:mode=paper none):"]
    for name, backends in backends_by_preset().items():
        who = ", ".join(backends) if backends else "no built-in name (its model folder)"
        lines.append(f"  {name or '(none: the defaults above)'}: {who}")
    return lines


def strategies_command(args: argparse.Namespace) -> int:
    names = [catalogue.check_name(args.name)] if args.name else list(OPTIONS)
    blocks = [strategy_lines(name) for name in names]
    print("\n\n".join("\n".join(block) for block in blocks))
    print()
    print("\n".join(preset_lines()))
    return 0
