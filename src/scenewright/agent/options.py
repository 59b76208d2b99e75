"""Command-line options the agent's faces share, and the agent they describe."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

# Refine passes when an image fails its check, on every face (generate, chat, serve, ``Agent``):
# off unless asked, because each pass costs another full render the user did not ask for.
DEFAULT_REFINE_ROUNDS = 0

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
    add_llm_timeout(p)
    p.add_argument("--strategy", default="auto", help="auto (default) or a strategy name, e.g. vanilla")
    p.add_argument(
        "--refine-rounds",
        type=int,
        default=DEFAULT_REFINE_ROUNDS,
        help=f"refine passes when the check fails (default {DEFAULT_REFINE_ROUNDS}; 0: never)",
    )
    p.add_argument(
        "--sam",
        metavar="CHECKPOINT",
        help="segment refine's objects with SAM (a transformers SAM folder or a segment-anything "
        ".pth); default: the objects' attention maps",
    )
    add_detector_options(p)
    p.add_argument("--steps", type=int, help="denoising steps (default: the backend's)")
    p.add_argument("--height", type=int, help="image height in pixels (default: the backend's)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the backend's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backend's)")
    p.add_argument("--seed", type=int, help="random seed (default 0, kept per conversation; -1 draws one)")
    p.add_argument("--out", default=out_default, help=f"output folder (default {out_default}/)")
    p.add_argument(
        "--history", metavar="FILE", help="keep conversations in this SQLite file (default: memory)"
    )
    p.add_argument("--thread", default="main", help="conversation id within --history (default main)")
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16"
    )
    from scenewright.backends.specs import QUANTIZE_CHOICES

    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None,
                   help="load the transformer and large text encoder quantized: bnb-4bit, bnb-8bit (CUDA), "
                   "torchao-int8 (pip install 'scenewright[torchao]')")  # fmt: skip
    add_lora_option(p)


def add_image_options(p: argparse.ArgumentParser) -> None:
    """``--negative-prompt`` and ``--n-images``: what ``generate`` and ``batch`` render per request."""
    p.add_argument("--negative-prompt", default="", help="what to steer away from (CFG backends)")
    p.add_argument("--n-images", type=int, metavar="N", help="render N seeds from --seed on (one model load)")


def add_lora_option(p: argparse.ArgumentParser) -> None:
    """``--lora``, repeatable: LoRAs on the whole image, or bound to objects where a plan names them."""
    p.add_argument(
        "--lora", action="append", default=[], metavar="PATH_OR_HUB_ID[:SCALE]",
        help="load a LoRA (a .safetensors file, its folder or a hub id; scale default 1; NAME=... names "
        "it); on the whole image, or on one object where the plan's object names it in \"loras\"",
    )  # fmt: skip


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """``--detector`` and ``--clip``: what judges images on real models (every face means the same)."""
    p.add_argument(
        "--detector",
        metavar="CHECKPOINT",
        help="judge images (and refine's rounds) with an OWLv2, Grounding DINO or Mask2Former "
        "folder or hub id; the embedded model keeps its exact evaluator",
    )
    p.add_argument(
        "--clip",
        metavar="CHECKPOINT",
        help="the CLIP that names colours for --detector (default openai/clip-vit-large-patch14)",
    )


def agent_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Agent`` keywords every face reads alike from its options (a face adds its own, e.g.
    the output folder); options a face lacks take the agent's defaults."""
    from scenewright.agent.bounds import check_refine_rounds

    return {
        "backend": args.backend,
        "planner": getattr(args, "planner", "rules"),
        "strategy": "auto",  # a named strategy is set after, by finish_agent
        "steps": args.steps,
        "height": args.height,
        "width": args.width,
        "guidance": args.guidance,
        "seed": args.seed,
        "max_refine_rounds": check_refine_rounds(getattr(args, "refine_rounds", DEFAULT_REFINE_ROUNDS)),
        "device": args.device,
        "dtype": args.dtype,
        "quantize": getattr(args, "quantize", None),
        "sam": getattr(args, "sam", None),
        "llm_settings": llm_settings(args),
        "loras": list(getattr(args, "lora", None) or []),
    }


def llm_settings(args: argparse.Namespace) -> Any:
    """The LLM planner's settings when ``--planner llm`` is chosen, with ``--llm-timeout``."""
    if getattr(args, "planner", "rules") != "llm":
        return None
    from scenewright.planner.llm import settings_with_timeout

    return settings_with_timeout(getattr(args, "llm_timeout", None))


def add_llm_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--llm-timeout", type=float, metavar="SECONDS",
        help="seconds to wait for each LLM answer (default 30; twice without an answer, then the rules planner)",
    )  # fmt: skip


def check_detector(args: argparse.Namespace) -> None:
    """Refuse a ``--detector`` (or ``--clip``) that names no such model, in one line, before an
    agent is built."""
    if getattr(args, "detector", None):
        from scenewright.tools.detection.color import resolve_clip
        from scenewright.tools.detection.detectors import resolve_detector

        resolve_detector(args.detector)
        if getattr(args, "clip", None) is not None:
            resolve_clip(args.clip)


def finish_agent(agent: Agent, args: argparse.Namespace) -> Agent:
    """What the options say after the agent exists: ``--detector`` (with ``--clip``) judges its
    images, and a named ``--strategy`` is used."""
    detector = getattr(args, "detector", None)
    if detector:
        from scenewright.agent.detection import attach_detector

        attach_detector(agent, detector, getattr(args, "clip", None), getattr(args, "device", None))
    strategy = getattr(args, "strategy", "auto")
    if strategy != "auto":
        agent.set_strategy(strategy)
    return agent


def agent_from_args(args: argparse.Namespace, review: bool = False) -> Agent:
    """The agent the shared options describe; a bad ``--detector`` is refused before it is built."""
    from scenewright.agent.core import Agent

    check_detector(args)
    agent = Agent(
        **agent_settings(args), out_dir=args.out, history=args.history, thread_id=args.thread, review=review
    )
    return finish_agent(agent, args)
