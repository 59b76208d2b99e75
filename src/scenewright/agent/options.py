"""Command-line options the agent's faces share, and the agent they describe."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenewright.agent.core import Agent


def add_agent_options(p: argparse.ArgumentParser, out_default: str) -> None:
    """Options for the model, planner, strategy, sampling and the conversation's history."""
    p.add_argument(
        "--backend", default="tiny", help="tiny (default), flux-dev, flux-schnell, sd3, ..., or a folder"
    )
    p.add_argument(
        "--planner", default="rules", choices=["rules", "llm"], help="rules (offline, default) or llm"
    )
    p.add_argument("--strategy", default="auto", help="auto (default) or a strategy name, e.g. vanilla")
    p.add_argument(
        "--refine-rounds",
        type=int,
        default=1,
        help="refine passes when the check fails (default 1; 0: never)",
    )
    p.add_argument(
        "--sam",
        metavar="CHECKPOINT",
        help="segment refine's objects with SAM (a transformers SAM folder or a segment-anything "
        ".pth); default: the objects' attention maps",
    )
    p.add_argument("--steps", type=int, help="denoising steps (default: the backend's)")
    p.add_argument("--height", type=int, help="image height in pixels (default: the backend's)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the backend's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backend's)")
    p.add_argument("--seed", type=int, help="random seed (default 0, kept per conversation)")
    p.add_argument("--out", default=out_default, help=f"output folder (default {out_default}/)")
    p.add_argument(
        "--history", metavar="FILE", help="keep conversations in this SQLite file (default: memory)"
    )
    p.add_argument("--thread", default="main", help="conversation id within --history (default main)")
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16"
    )


def agent_from_args(args: argparse.Namespace, review: bool = False) -> Agent:
    """The agent the shared options describe."""
    from scenewright.agent.core import Agent

    agent = Agent(
        backend=args.backend,
        planner=args.planner,
        strategy="auto",
        steps=args.steps,
        height=args.height,
        width=args.width,
        guidance=args.guidance,
        seed=args.seed,
        out_dir=args.out,
        history=args.history,
        thread_id=args.thread,
        review=review,
        max_refine_rounds=max(0, args.refine_rounds),
        device=args.device,
        dtype=args.dtype,
        sam=getattr(args, "sam", None),
    )
    if args.strategy != "auto":
        agent.set_strategy(args.strategy)
    return agent
