"""Write the reference fixtures that tests/test_reference_*.py compare our ``paper`` modes with.

Each method's authors' repository is checked out by the user (nothing of their code is part of
scenewright); this script runs it on seeded tiny random-weight models and writes small tensors
under ``tests/fixtures/reference/<method>/`` with a ``SOURCE.md`` that records the authors' commit,
this command and every adaptation their code needed.

    python scripts/reference_fixtures.py regional /path/to/Regional-Prompting-FLUX
    python scripts/reference_fixtures.py concept /path/to/ConceptAttention
    python scripts/reference_fixtures.py taca /path/to/TACA
    python scripts/reference_fixtures.py numina /path/to/NUMINA
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("regional", "concept", "taca", "numina")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("checkout", type=Path, help="a checkout of the method's authors' repository")
    parser.add_argument("--out", type=Path, default=None, help="default: tests/fixtures/reference/<method>")
    args = parser.parse_args(argv)
    if not args.checkout.is_dir():
        parser.error(f"checkout: {args.checkout} is not a folder; clone the authors' repository there first")
    # The method modules live beside this script; the tiny model builders in tests/.
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests"), str(ROOT / "src")]
    module = importlib.import_module(f"reference.{args.method}")
    out = args.out or ROOT / "tests" / "fixtures" / "reference" / args.method
    out.mkdir(parents=True, exist_ok=True)
    module.generate(args.checkout.resolve(), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
