"""The ``scenewright plan`` subcommand: a request in, its plan out (JSON or a readable summary).

``cli.py`` owns the parser; this module only adds the subcommand to it through :func:`register`.
Errors are :class:`InvalidInputError`, which the CLI prints as one line with exit code 2;
warnings (capped counts, a fallback from the LLM) go to stderr, the plan to stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, TextIO

from scenewright.errors import InvalidInputError
from scenewright.planner.plan import Plan, PlanResult
from scenewright.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plan PROMPT [--json] [--planner rules|llm] [--model M] [--seed N]``."""
    p = subparsers.add_parser("plan", help="turn a request into a plan: objects, counts, boxes, relations")
    p.add_argument("prompt", help='the request, e.g. "three red apples left of a blue vase, at night"')
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--planner",
        choices=("rules", "llm"),
        default="rules",
        help="rules (default: offline, no key) or llm (an OpenAI-compatible endpoint: "
        "OPENAI_BASE_URL, OPENAI_API_KEY; falls back to rules with a warning)",
    )
    p.add_argument("--model", default=None, help="model name for --planner llm (default gpt-4o-mini)")
    p.add_argument("--seed", type=int, default=0, help="layout seed (default 0)")
    p.add_argument(
        "--llm-timeout", type=float, default=None, metavar="SECONDS",
        help="seconds to wait for each LLM answer (default 30; a timed-out request is tried twice)",
    )  # fmt: skip
    p.set_defaults(handler=plan_command)


def make_plan(
    prompt: str, planner: str = "rules", model: str | None = None, seed: int = 0, timeout: float | None = None
) -> PlanResult:
    """The plan for ``prompt`` from the chosen planner; what the command and other code call."""
    if planner == "rules":
        from scenewright.planner.rules import plan_with_rules

        return plan_with_rules(prompt, seed)
    if planner == "llm":
        from scenewright.planner.llm import DEFAULT_MODEL, LLMPlanner, settings_with_timeout

        settings = settings_with_timeout(timeout, model=model or DEFAULT_MODEL, seed=seed)
        return LLMPlanner(settings).plan(prompt)
    raise InvalidInputError(
        "planner", f"{planner!r} is not a planner", "use --planner rules or --planner llm"
    )


def summary(plan: Plan) -> str:
    """A few readable lines: each object with its count, attributes and boxes, then relations."""
    lines = [f"prompt: {plan.prompt}"]
    if plan.background:
        lines.append(f"background: {plan.background}")
    for index, obj in enumerate(plan.objects):
        lines.append(f"[{index}] {obj.count} x {obj.prompt}")
        for box in obj.boxes:
            lines.append("      box " + " ".join(f"{v:.2f}" for v in box))
    for rel in plan.relations:
        lines.append(
            f"{plan.objects[rel.subject].name} [{rel.subject}] {rel.relation} {plan.objects[rel.object].name} [{rel.object}]"
        )
    return "\n".join(lines)


def _compact_numbers(text: str) -> str:
    """Indented JSON with each box on one line: ``[0.1, 0.2, 0.3, 0.4]``."""
    return re.sub(
        r"\[\s+(-?[\d.eE+-]+(?:,\s+-?[\d.eE+-]+)*)\s+\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )


def plan_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Handler of ``scenewright plan``: prints the plan; warnings go to stderr."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.seed is not None and args.seed < 0:
        raise InvalidInputError("seed", f"{args.seed} is negative", "use --seed 0 or more")
    if args.planner == "llm" and err.isatty():  # a progress note for a person, not for pipes
        print("planner: asking the LLM (falls back to the rules planner if it does not answer)", file=err)
    result = make_plan(args.prompt, args.planner, args.model, args.seed, getattr(args, "llm_timeout", None))
    for warning in result.warnings:
        print(printable(f"warning: {warning}"), file=err)
    if args.json:
        payload: dict[str, Any] = result.plan.to_json_dict()
        print(_compact_numbers(json.dumps(payload, indent=2)), file=out)
    else:
        print(f"planner: {result.planner}", file=out)
        print(printable(summary(result.plan)), file=out)
    return 0
