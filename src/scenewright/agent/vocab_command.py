"""``scenewright vocab``: the words the embedded model draws, read from the toy world's own tables.

Shapes, colours and counts come from the tokenizer's vocabulary (:mod:`scenewright.toyworld.vocab`),
backgrounds from what an empty scene was called in training, relations and places from the rules
planner (they are laid out by boxes, never drawn by the model). A prompt built from these words
is one the embedded model can follow; any other noun or colour reaches it as ``[UNK]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add ``vocab`` to the CLI's sub-commands."""
    p = sub.add_parser(
        "vocab", help="the words the embedded model knows: shapes, colours, counts, relations, backgrounds"
    )
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(handler=vocab_command)


def _place(anchor: str) -> str:
    if anchor == "center":
        return "in the middle"
    return f"on the {anchor}" if anchor in ("left", "right") else f"at the {anchor}"


def vocabulary_groups() -> dict[str, list[str]]:
    """Each group of words the embedded model (with the rules planner) understands, in table order."""
    from scenewright.agent.fit_checks import drawable_backgrounds
    from scenewright.planner.lexicon import ANCHOR_PHRASES, RELATIONS
    from scenewright.toyworld.vocab import COLORS, NUMBER_WORDS, SHAPES

    places = list(dict.fromkeys(ANCHOR_PHRASES.values()))
    groups = {
        "shapes": [f"{one} ({many})" for one, many in SHAPES.items()],
        "colours": list(COLORS),
        "counts": [*NUMBER_WORDS.values(), *(str(n) for n in NUMBER_WORDS)],
        "relations": [r for r in RELATIONS if r != "between"],
        "places": [_place(p) for p in places],
        "backgrounds": drawable_backgrounds(),
    }
    loras = shipped_lora_lines()
    if loras:
        groups["loras"] = loras
    return groups


def shipped_lora_lines() -> list[str]:
    """The LoRAs shipped beside the embedded models: the name a plan object gives in its "loras"
    (or ``--lora NAME=...``), on which model, and what it draws."""
    from scenewright.backends.lora_files import shipped_lora_notes
    from scenewright.backends.specs import ALIASES, EMBEDDED_MODEL_DIR

    lines = []
    for alias in ("tiny", "tiny16"):
        source = ALIASES[alias].source
        folder = Path(source) if source else EMBEDDED_MODEL_DIR
        for name, card in shipped_lora_notes(folder).items():
            lines.append(
                f'{name} ({alias}; a plan object\'s "loras": [{{"name": "{name}"}}]): {card.get("draws", "")}'
            )
    return lines


def vocab_command(args: argparse.Namespace) -> int:
    """Print the groups, one a line, and an example built from them."""
    groups = vocabulary_groups()
    if args.json:
        print(json.dumps(groups, indent=2))
        return 0
    print("The embedded model (tiny, tiny16) draws these words; other nouns and colours reach it as [UNK].")
    for name, words in groups.items():
        print(f"{name + ':':<13}{', '.join(words)}")
    print('example:     "three red circles left of a blue square" (counts up to six per object)')

    return 0
