"""Regenerate the tables in docs/ that the code and the shipped model folders hold.

- Each strategy's options (docs/strategies.md): the range from its module's ``OPTIONS``, the
  default from its function's signature (what FLUX.1 and SD3 run), and the value each embedded
  model's ``strategy_defaults.json`` tunes. The meaning column is prose and stays as written.
- What ``auto`` picks on each embedded model (docs/benchmarks.md), from its ``auto_table.json``.

A table sits between ``<!-- generated: KIND NAME -->`` and ``<!-- /generated -->``; nothing
outside those markers is touched. ``--check`` rewrites nothing and exits 1 if a table is stale or
an option has no meaning written, so the docs cannot drift from the code unseen.

Usage: PYTHONPATH=src python scripts/doc_tables.py [--check]
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from scenewright.backends.registry import ALIASES
from scenewright.backends.tiny import EMBEDDED_MODEL_DIR
from scenewright.executor.options import Choice, Range
from scenewright.executor.strategies import OPTION_BOUNDS, STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "src" / "scenewright" / "models"
BLOCK = re.compile(r"(<!-- generated: (\S+) (\S+) -->\n)(.*?)(<!-- /generated -->)", re.S)
NO_MEANING = "(meaning not written yet)"


def _backend_names() -> dict[str, str]:
    """Model folder name -> the ``--backend`` name that loads it."""
    names = {EMBEDDED_MODEL_DIR.name: "tiny"}
    names.update({Path(s.source).name: s.name for s in ALIASES.values() if s.family == "tiny" and s.source})
    return names


def _value(value: Any) -> str:
    return (
        f"`{value}`" if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    )


def _range(bound: Any) -> str:
    if isinstance(bound, Range):
        return f"{bound.low:g} to {bound.high:g}"
    if isinstance(bound, Choice):
        return " \\| ".join(f"`{v}`" for v in bound.values)
    return "a strategy name"


def _tuned(strategy: str) -> dict[str, dict[str, Any]]:
    """Backend -> the options its strategy_defaults.json sets for ``strategy`` or its
    compositions (``regional+taca``), keyed by the name they are set under."""
    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in MODELS.iterdir() if (p / "strategy_defaults.json").is_file()):
        tuned = json.loads((folder / "strategy_defaults.json").read_text())
        entries = {k: v for k, v in tuned.items() if k.partition("+")[0] == strategy}
        if entries:
            found[_backend_names().get(folder.name, folder.name)] = entries
    return found


def _meanings(old: str) -> dict[str, str]:
    rows = (line.split(" | ") for line in old.splitlines() if line.startswith("| `"))
    return {cells[0].strip("| `"): cells[1] for cells in rows if len(cells) > 1}


def options_table(strategy: str, old: str) -> tuple[str, list[str]]:
    """The options table of ``strategy`` and the options whose meaning is not written."""
    parameters = inspect.signature(STRATEGIES[strategy]).parameters
    defaults = {
        k: p.default
        for k, p in parameters.items()
        if isinstance(p.default, (int, float, str)) and not isinstance(p.default, bool)
    }
    bounds = OPTION_BOUNDS.get(strategy, {})
    tuned = _tuned(strategy)
    models = [m for m, entries in tuned.items() if strategy in entries]
    meanings = _meanings(old)
    header = ["option", "meaning", "range", "default", *(f"tuned on {m}" for m in models)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    missing = []
    for key, default in defaults.items():
        meaning = meanings.get(key, NO_MEANING)
        if meaning == NO_MEANING:
            missing.append(key)
        cells = [f"`{key}`", meaning, _range(bounds.get(key)), _value(default)]
        for model in models:
            value = tuned[model][strategy].get(key)
            cells.append("" if value is None else f"**{_value(value)}**")
        lines.append("| " + " | ".join(cells) + " |")
    for model, entries in tuned.items():
        for name, options in entries.items():
            if name != strategy:
                overrides = ", ".join(f"`{k}={v}`" for k, v in options.items())
                lines.append(f"\n`{name}` on {model} takes the tuned options above with {overrides}.")
    return "\n".join(lines) + "\n", missing


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


def regenerate(text: str) -> tuple[str, list[str]]:
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        kind, name, old = match.group(2), match.group(3), match.group(4)
        if kind == "options":
            new, lacking = options_table(name, old)
            missing.extend(f"{name}:{key}" for key in lacking)
        elif kind == "auto-table":
            new = auto_table(name)
        else:
            raise SystemExit(f"unknown generated block {kind!r}")
        return match.group(1) + new + match.group(5)

    return BLOCK.sub(replace, text), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args()
    stale = False
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        new, missing = regenerate(text)
        for key in missing:
            print(f"{doc.relative_to(ROOT)}: option {key} has no meaning written", file=sys.stderr)
        if new != text:
            stale = True
            print(f"{doc.relative_to(ROOT)}: {'stale' if args.check else 'regenerated'}")
            if not args.check:
                doc.write_text(new)
        stale = stale or bool(missing)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
