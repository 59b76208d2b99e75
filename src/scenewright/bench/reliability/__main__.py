"""``python -m scenewright.bench.reliability``: the same as ``scenewright bench reliability``."""

from __future__ import annotations

import argparse
import sys

from scenewright.bench.reliability.run import add_arguments, reliability_command
from scenewright.errors import ScenewrightError

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m scenewright.bench.reliability")
    add_arguments(parser)
    try:
        raise SystemExit(reliability_command(parser.parse_args()))
    except ScenewrightError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
