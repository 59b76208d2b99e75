"""Regenerate the tables in docs/ that the code and the shipped model folders hold.

- Each strategy's options (docs/strategies.md), from the torch-free catalogue
  (``executor/catalogue.py``: meaning, range, default, origin) and the value each shipped preset
  (``src/scenewright/models/*/strategy_defaults.json``) sets; ``scenewright strategies`` prints
  the same.
- What ``auto`` picks on each embedded model (docs/benchmarks.md), from its ``auto_table.json``.

A table sits between ``<!-- generated: KIND NAME -->`` and ``<!-- /generated -->``; nothing
outside those markers is touched. ``--check`` rewrites nothing and exits 1 if a table is stale,
so the docs cannot drift from the code unseen.

Usage: PYTHONPATH=src python scripts/doc_tables.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from scenewright.backends.specs import ALIASES, EMBEDDED_MODEL_DIR
from scenewright.executor import catalogue, presets

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "src" / "scenewright" / "models"
BLOCK = re.compile(r"(<!-- generated: (\S+) (\S+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def _backend_names() -> dict[str, str]:
    """Model folder name -> the ``--backend`` name that loads it."""
    names = {EMBEDDED_MODEL_DIR.name: "tiny"}
    names.update({Path(s.source).name: s.name for s in ALIASES.values() if s.family == "tiny" and s.source})
    return names


def _value(value: Any) -> str:
    return (
        f"`{value}`" if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    )


def _range(option: catalogue.Option) -> str:
    if isinstance(option.bound, catalogue.Choice):
        return " \\| ".join(f"`{v}`" for v in option.bound.values)
    return catalogue.range_text(option)


def options_table(strategy: str) -> str:
    """The options table of ``strategy``: each option's meaning, range, default and origin, and a
    column for each preset that sets any of them."""
    tuned = {
        name: tuning for name, tuning in presets.presets().items() if tuning.get(strategy)
    }
    header = ["option", "meaning", "range", "default", "from", *(f"preset {m}" for m in tuned)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, option in catalogue.OPTIONS[strategy].items():
        cells = [f"`{key}`", option.meaning, _range(option), _value(option.default), option.origin]
        for tuning in tuned.values():
            value = tuning[strategy].get(key)
            cells.append("" if value is None else f"**{_value(value)}**")
        lines.append("| " + " | ".join(cells) + " |")
    for name, tuning in presets.presets().items():
        for composed, options in tuning.items():
            if composed.partition("+")[0] == strategy and composed != strategy:
                overrides = ", ".join(f"`{k}={v}`" for k, v in options.items())
                lines.append(f"\n`{composed}` with preset {name} takes the preset's options above with {overrides}.")
    removed = catalogue.REMOVED.get(strategy, {})
    if removed:
        lines.append("\nRemoved ([why](design-notes.md#options-removed)): " + ", ".join(f"`{k}`" for k in removed) + ".")
    return "\n".join(lines) + "\n"


def auto_table(backend: str) -> str:
    """What ``auto`` picks per kind of plan on ``backend``: its three best-ranked strategies."""
    folder = {name: folder for folder, name in _backend_names().items()}[backend]
    table = json.loads((MODELS / folder / "auto_table.json").read_text())
    lines = ["| kind of plan | picked | then | then |", "|---|---|---|---|"]
    for kind, entry in table["kinds"].items():
        ranked = [
            f"{e['strategy']} {e['passed']:.0%} ({e['seconds_per_image']:.2f} s)"
            for e in entry["ranking"][:3]
        ]
        ranked[0] = f"**{ranked[0]}**"
        lines.append(f"| {kind} | " + " | ".join(ranked) + " |")
    lines.append(
        f"\nShare of {table['n']} cases a kind passed (seed {table['seed']}) and seconds an image; "
        f"`{table['command']}`."
    )
    return "\n".join(lines) + "\n"


def regenerate(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(2), match.group(3)
        if kind == "options":
            new = options_table(name)
        elif kind == "auto-table":
            new = auto_table(name)
        else:
            raise SystemExit(f"unknown generated block {kind!r}")
        return match.group(1) + new + match.group(5)

    return BLOCK.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args()
    stale = False
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        new = regenerate(text)
        if new != text:
            stale = True
            print(f"{doc.relative_to(ROOT)}: {'stale' if args.check else 'regenerated'}")
            if not args.check:
                doc.write_text(new)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
