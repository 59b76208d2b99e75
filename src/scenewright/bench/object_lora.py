"""``scenewright bench object-lora``: a LoRA bound to one object, measured by the exact evaluator.

The embedded 16x16-token model ships a LoRA (``recolor``, trained by ``train-toyworld --lora``)
that draws every object in the next colour of the palette (``toyworld.lora_train.RECOLOR``). On
two-object plans, each rendered three times from one seed (no LoRA; the LoRA bound to the first
object; the LoRA on the whole image), an object *shows the change* when a shape of its kind in
its recoloured colour sits in its box, and *keeps its colour* when one in its own colour does.
Placement and counts are judged against the colours each render should have drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError

CONDITIONS = ("none", "object", "whole")
CONDITION_LABELS = {"none": "no LoRA", "object": "LoRA on object A only", "whole": "LoRA on the whole image"}


def register(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "object-lora",
        help="a shipped toy LoRA bound to one object vs the whole image, by the exact evaluator",
    )
    p.add_argument("--n", type=int, default=50, help="two-object plans (default 50)")
    p.add_argument("--seed", type=int, default=0, help="case seed (default 0)")
    p.add_argument(
        "--backend", default="tiny16", help="an embedded model that ships the LoRA (default tiny16)"
    )
    p.add_argument("--lora", default="recolor", help="the shipped LoRA's name (default recolor)")
    p.add_argument("--strategy", default="regional", help="regional (default) or stitch, with options")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--json", dest="json_path", help="write every case's judgement here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument(
        "--cost", action="store_true",
        help="instead: what 1 and 3 object LoRAs add to FLUX.1-dev's and SD3.5's work and memory",
    )  # fmt: skip
    p.add_argument("--rank", type=int, default=16, help="with --cost: the LoRAs' rank (default 16)")
    p.set_defaults(handler=run)


def lora_cost(model: str, rank: int, loras: int, dtype_bytes: int = 2) -> dict[str, float]:
    """What ``loras`` bound LoRAs of ``rank`` on every projection add to one transformer call of
    the published ``model`` (built on the meta device, no memory used).

    Work: each wrapped linear ``in x out`` costs ``2 in out`` per token, its adapter ``2 r (in +
    out)`` plus ``out`` for the per-token scale; attention's own work is left out of the
    denominator, so the share is an upper bound. Memory: the adapters' weights in ``dtype_bytes``,
    and the largest transient a bound adapter adds at once: one (tokens, out) scaled copy of its
    delta (the widest projection's), at the model's 1024 px token count."""
    import torch

    from scenewright.bench.geometry import geometry, transformer_class
    from scenewright.toyworld.lora_train import TARGETS

    geo = geometry(model, "full")
    with torch.device("meta"):
        transformer = transformer_class(geo.family)(**geo.transformer)
    base = extra = params = 0
    widest = 0
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or not any(name.endswith(t) for t in TARGETS):
            continue
        d_in, d_out = module.in_features, module.out_features
        base += 2 * d_in * d_out
        extra += loras * (2 * rank * (d_in + d_out) + d_out)
        params += loras * rank * (d_in + d_out)
        widest = max(widest, d_out)
    tokens = 4096 + (512 if geo.family == "flux" else 333)
    return {
        "work_share": extra / base,
        "weights_gib": params * dtype_bytes / 2**30,
        "transient_mib": tokens * widest * dtype_bytes / 2**20,
    }


def cost_table(rank: int) -> str:
    lines = [
        f"| model | object LoRAs (rank {rank}) | added work per regional step | adapter weights | largest transient |",
        "|---|---|---|---|---|",
    ]
    for model in ("flux-dev", "sd3.5-large", "sd3.5-medium"):
        for loras in (1, 3):
            cost = lora_cost(model, rank, loras)
            lines.append(
                f"| {model} | {loras} | +{100 * cost['work_share']:.1f}% | {cost['weights_gib']:.2f} GiB "
                f"| {cost['transient_mib']:.0f} MiB |"
            )
    return "\n".join(lines)


@dataclass
class Tally:
    """Per condition: cases where A / B showed the change, kept their colour, all placed, counts right."""

    a_changed: int = 0
    b_changed: int = 0
    a_kept: int = 0
    b_kept: int = 0
    placed: int = 0
    counted: int = 0
    cases: list[dict[str, Any]] = field(default_factory=list)


def drawn_in_box(detections: list[Any], color: str, shape: str, box: tuple[float, ...], size: int) -> bool:
    """Whether a ``color`` ``shape`` has its centre inside the normalised ``box``."""
    x0, y0, x1, y1 = (v * size for v in box)
    return any(
        d.color == color and d.shape == shape and x0 <= d.center[0] <= x1 and y0 <= d.center[1] <= y1
        for d in detections
    )


def expected_plan(plan: Any, recolored: set[int], mapping: dict[str, str]) -> Any:
    """The plan with the objects in ``recolored`` asking for their LoRA colour (what to judge by)."""
    objects = []
    for index, obj in enumerate(plan.objects):
        colour = mapping[obj.attributes[0]] if index in recolored else obj.attributes[0]
        objects.append(
            obj.model_copy(update={"attributes": [colour], "prompt": f"{colour} {obj.name}", "loras": []})
        )
    return plan.model_copy(update={"objects": objects})


def judge(
    image: Any, plan: Any, recolored: set[int], mapping: dict[str, str], tally: Tally
) -> dict[str, Any]:
    """Add one render's judgement to ``tally``; return it."""
    from scenewright.tools.evaluator import detect, score_plan

    size = image.size[0]
    detections = detect(image)
    a, b = plan.objects[0], plan.objects[1]
    row = {
        "a_changed": drawn_in_box(detections, mapping[a.attributes[0]], a.name, a.boxes[0], size),
        "b_changed": drawn_in_box(detections, mapping[b.attributes[0]], b.name, b.boxes[0], size),
        "a_kept": drawn_in_box(detections, a.attributes[0], a.name, a.boxes[0], size),
        "b_kept": drawn_in_box(detections, b.attributes[0], b.name, b.boxes[0], size),
    }
    score = score_plan(image, expected_plan(plan, recolored, mapping))
    row["placed"], row["counted"] = score.position_ok, score.counts_exact
    for key, value in row.items():
        setattr(tally, key, getattr(tally, key) + int(value))
    tally.cases.append(row)
    return row


def table(tallies: dict[str, Tally], n: int) -> str:
    """The markdown table docs/benchmarks.md shows."""

    def pct(count: int) -> str:
        return f"{100 * count / n:.0f}%"

    lines = [
        "| render | A recoloured | B recoloured | A own colour | B own colour | placed | counts |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, tally in tallies.items():
        lines.append(
            f"| {CONDITION_LABELS[name]} | {pct(tally.a_changed)} | {pct(tally.b_changed)} | {pct(tally.a_kept)} "
            f"| {pct(tally.b_kept)} | {pct(tally.placed)} | {pct(tally.counted)} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from scenewright.backends import load_backend, resolve_backend
    from scenewright.backends.lora import load_loras, model_dir
    from scenewright.backends.lora_files import shipped_loras
    from scenewright.bench.cases import make_cases
    from scenewright.executor.catalogue import check_strategy
    from scenewright.executor.sampler import SamplingSettings
    from scenewright.executor.strategies import run_strategy
    from scenewright.planner.plan import ObjectLora
    from scenewright.toyworld.lora_train import RECOLOR

    if args.cost:
        print(cost_table(args.rank))
        return 0
    if args.n < 1:
        raise InvalidInputError("n", f"{args.n} cases is too few", "use --n 1 or more")
    check_strategy(args.strategy)
    plain = load_backend(resolve_backend(args.backend))
    path = shipped_loras(model_dir(plain)).get(args.lora)
    if path is None:
        raise InvalidInputError(
            "lora", f"{args.backend} ships no LoRA named {args.lora!r}", "use --lora recolor"
        )
    whole = load_backend(resolve_backend(args.backend))
    load_loras(whole, [f"{args.lora}={path}"])
    tallies = {name: Tally() for name in CONDITIONS}
    cases = make_cases("two", args.n, args.seed)
    for number, case in enumerate(cases, start=1):
        defaults = plain.defaults
        settings = SamplingSettings(defaults.height, defaults.width, args.steps or defaults.steps,
                                    defaults.guidance, seed=case.seed)  # fmt: skip
        bound = case.plan.model_copy(deep=True)
        bound.objects[0].loras = [ObjectLora(name=args.lora)]
        renders = {
            "none": (plain, case.plan, set()),
            "object": (plain, bound, {0}),
            "whole": (whole, case.plan, {0, 1}),
        }
        for name, (backend, plan, recolored) in renders.items():
            image = run_strategy(args.strategy, backend, plan, settings).image
            row = judge(image, case.plan, recolored, RECOLOR, tallies[name])
            row.update(case=case.index, seed=case.seed)
        if not args.quiet:
            print(f"[{number}/{len(cases)}] " + "  ".join(
                f"{n}: A {int(t.cases[-1]['a_changed'])} B {int(t.cases[-1]['b_changed'])}" for n, t in tallies.items()
            ), file=sys.stderr, flush=True)  # fmt: skip
    print(
        f"{args.backend}, {args.strategy}, n = {args.n} two-object plans (seed {args.seed}), LoRA {args.lora}"
    )
    print(table(tallies, args.n))
    if args.json_path:
        record = {name: t.cases for name, t in tallies.items()}
        Path(args.json_path).write_text(json.dumps(record, indent=1) + "\n")
    return 0
