"""``scenewright train-toyworld``: train (or resume training) the embedded model."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError
from scenewright.toyworld.model_config import CODEC_FILE, TinyConfig, read_codec
from scenewright.toyworld.vocab import SHAPES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-toyworld",
        help="train the embedded toy-world model (resumes from OUT/checkpoint.pt if present)",
    )
    p.add_argument("--out", default="runs/toyworld", help="run folder: checkpoint.pt, train.log, export/")
    p.add_argument("--steps", type=int, default=40_000, help="train until this many steps in total")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=500, help="steps of linear learning-rate warm-up")
    p.add_argument(
        "--decay-steps",
        type=int,
        default=0,
        help="decay the learning rate linearly to 0 over the last N steps",
    )
    p.add_argument("--t-mean", type=float, default=0.5, help="location of the logit-normal noise level")
    p.add_argument(
        "--simple-fraction",
        type=float,
        default=0.0,
        help="share of training scenes with one or two single objects (0 to 1)",
    )
    p.add_argument(
        "--empty-fraction",
        type=float,
        default=0.0,
        help="share of training scenes with no object, captioned as a black background (0 to 1)",
    )
    p.add_argument(
        "--shape-weights",
        default="",
        help="draw some shapes more often than the others, e.g. star=3,triangle=2 (others weigh 1; "
        "default: every shape alike)",
    )
    p.add_argument(
        "--pooled-swap",
        type=float,
        default=0.0,
        help="share of samples trained with another caption's pooled vector (0 to 1), so that the "
        "model reads what to draw from the tokens, which regional prompting binds to boxes (default 0)",
    )
    p.add_argument(
        "--grounding-weight",
        type=float,
        default=0.0,
        help="weight of the grounding loss: each object's words attend to its pixels (0: off)",
    )
    p.add_argument(
        "--grounding-max-noise",
        type=float,
        default=1.0,
        help="apply the grounding loss only to samples noised up to this level (0 to 1; default 1: all)",
    )
    p.add_argument(
        "--grounding-kind",
        choices=("mass", "share"),  # grounding.GROUNDING_KINDS, kept literal so --help imports no torch
        default="mass",
        help="mass: each group's attention inside its shapes; share: inside its shapes, its words "
        "take the largest share of the attention on the object words (default mass)",
    )
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument(
        "--device",
        default="auto",
        help="where the model trains: auto (CUDA if torch sees a GPU, else the CPU), cpu, cuda or cuda:N",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes rendering the scenes of later steps while the model trains "
        "(0: render in this process); the batches are the same for any number",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        help="fp32; on CUDA also tf32 (TF32 matmuls) or bf16 (bf16 autocast, fp32 weights)",
    )
    p.add_argument("--init-from", help="start from an exported model folder instead of random weights")
    p.add_argument(
        "--lora",
        action="store_true",
        help="train a LoRA on the --init-from model instead (default tiny16): --out is the .safetensors "
        "written, and every object is drawn in the next colour of the palette (see toyworld.lora_train)",
    )
    p.add_argument("--lora-rank", type=int, default=8, help="with --lora: the adapter's rank (4 to 16)")
    p.add_argument(
        "--ship",
        action="store_true",
        help="do not train: copy OUT's EMA weights into the package (src/scenewright/models/toyworld, or --ship-to)",
    )
    p.add_argument(
        "--ship-to",
        help="with --ship: the model folder to replace (default: the embedded default model's); "
        "e.g. src/scenewright/models/toyworld16",
    )
    for f in fields(TinyConfig):
        p.add_argument(f"--model-{f.name.replace('_', '-')}", dest=f"model_{f.name}", type=type(f.default))
    p.set_defaults(handler=run)


def _init_from_config(folder: str) -> dict[str, Any]:
    """The ``TinyConfig`` fields of the exported model folder a run continues from."""
    try:
        return read_codec(folder)
    except FileNotFoundError as error:
        raise InvalidInputError(
            "init_from",
            f"{folder} holds no exported model (no {CODEC_FILE})",
            "pass a run's export/ folder or a shipped model folder",
        ) from error


def run(args: argparse.Namespace) -> int:
    from scenewright.toyworld.train import (
        SAMPLING_DEFAULTS,
        TrainConfig,
        check_runtime,
        parameter_count,
        ship,
        train,
    )

    if args.lora:
        return run_lora(args)
    if args.ship:
        from scenewright.backends.tiny import EMBEDDED_MODEL_DIR

        sampling = {
            f.name: getattr(args, f"model_{f.name}")
            for f in fields(TinyConfig)
            if getattr(args, f"model_{f.name}") is not None
        }
        dest = Path(args.ship_to) if args.ship_to else EMBEDDED_MODEL_DIR
        if args.ship_to and not (dest / CODEC_FILE).is_file():
            raise InvalidInputError(
                "ship_to",
                f"{dest} is not a model folder (no {CODEC_FILE})",
                "pass an existing model folder under src/scenewright/models",
            )
        target = f" --ship-to {args.ship_to}" if args.ship_to else ""
        command = f"scenewright train-toyworld --out {args.out} --ship{target}" + "".join(
            f" --model-{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in sampling.items()
        )
        try:
            print(f"shipped: {ship(args.out, dest, command, sampling)}")
        except FileNotFoundError as error:
            raise InvalidInputError(
                "out", str(error), "pass the run folder given to --out when training"
            ) from error
        except ValueError as error:
            raise InvalidInputError(
                "model",
                str(error),
                "with --ship, set only --model-default-steps, --model-default-guidance, --model-default-guidance-max-sigma or --model-default-background-prompt",
            ) from error
        return 0

    if not 0 <= args.decay_steps <= args.steps:
        raise InvalidInputError(
            "decay_steps",
            f"{args.decay_steps} is not within 0..{args.steps}",
            "use --decay-steps between 0 and --steps",
        )
    for name in ("simple_fraction", "empty_fraction", "pooled_swap"):
        if not 0 <= getattr(args, name) <= 1:
            raise InvalidInputError(
                name,
                f"{getattr(args, name)} is not a share",
                f"use --{name.replace('_', '-')} between 0 and 1",
            )
    shape_weights = parse_shape_weights(args.shape_weights)
    if args.grounding_weight < 0:
        raise InvalidInputError(
            "grounding_weight", f"{args.grounding_weight} is negative", "use --grounding-weight 0 or more"
        )
    if not 0 < args.grounding_max_noise <= 1:
        raise InvalidInputError(
            "grounding_max_noise",
            f"{args.grounding_max_noise} is not a noise level",
            "use --grounding-max-noise above 0 and at most 1",
        )
    if args.simple_fraction + args.empty_fraction > 1:
        raise InvalidInputError(
            "empty_fraction",
            "--simple-fraction and --empty-fraction add up to more than 1",
            "lower one of them",
        )
    for name in ("steps", "batch", "save_every"):
        if getattr(args, name) < 1:
            raise InvalidInputError(
                name, f"{getattr(args, name)} must be positive", f"use --{name.replace('_', '-')} 1 or more"
            )
    overrides = {f.name: getattr(args, f"model_{f.name}") for f in fields(TinyConfig)}
    # A continued run keeps the sizes and sampling defaults of the model it starts from; a
    # --model-* option may replace a sampling default, never a size (the weights would not fit).
    start = _init_from_config(args.init_from) if args.init_from else {}
    resized = sorted(
        k
        for k, v in overrides.items()
        if v is not None and k in start and k not in SAMPLING_DEFAULTS and v != start[k]
    )
    if resized:
        raise InvalidInputError(
            "model",
            f"--init-from {args.init_from} has {', '.join(f'{k}={start[k]}' for k in resized)}; its weights cannot take other sizes",
            "drop those --model-* options, or train a new model without --init-from",
        )
    try:
        model_cfg = TinyConfig(**{**start, **{k: v for k, v in overrides.items() if v is not None}})
    except ValueError as error:
        raise InvalidInputError("model", str(error), "see --help for the --model-* options") from error
    cfg = TrainConfig(
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        warmup=args.warmup,
        decay_steps=args.decay_steps,
        t_mean=args.t_mean,
        simple_fraction=args.simple_fraction,
        empty_fraction=args.empty_fraction,
        shape_weights=shape_weights,
        pooled_swap=args.pooled_swap,
        ema=args.ema,
        seed=args.seed,
        save_every=args.save_every,
        threads=args.threads,
        init_from=args.init_from,
        device=args.device,
        workers=args.workers,
        precision=args.precision,
        grounding_weight=args.grounding_weight,
        grounding_max_noise=args.grounding_max_noise,
        grounding_kind=args.grounding_kind,
    )
    cfg.device = str(check_runtime(cfg))  # "auto" resolved, so the checkpoint records the device
    print(f"model: {parameter_count(model_cfg) / 1e6:.2f}M parameters; run folder {cfg.out}")
    export = train(cfg, model_cfg)
    print(f"EMA weights: {export}")
    return 0


def run_lora(args: argparse.Namespace) -> int:
    """``train-toyworld --lora``: a LoRA for a shipped model, in minutes on a CPU."""
    from scenewright.backends.specs import TINY16_DIR
    from scenewright.toyworld.lora_train import LoraTrainConfig, train_lora

    if not 4 <= args.lora_rank <= 16:
        raise InvalidInputError("lora_rank", f"{args.lora_rank} is out of range", "use 4 to 16")
    if not str(args.out).endswith(".safetensors"):
        raise InvalidInputError("out", f"{args.out} is not a .safetensors file", "use --out NAME.safetensors")
    base = args.init_from or str(TINY16_DIR)
    _init_from_config(base)
    command = (
        f"scenewright train-toyworld --lora --init-from {_package_path(base)} --out {args.out} "
        f"--steps {args.steps} --batch {args.batch} --lr {args.lr} --lora-rank {args.lora_rank} --seed {args.seed}"
    )
    cfg = LoraTrainConfig(
        base=base, out=args.out, rank=args.lora_rank, steps=args.steps, batch=args.batch, lr=args.lr,
        seed=args.seed, threads=args.threads,
    )  # fmt: skip
    print(f"written: {train_lora(cfg, command)}")
    return 0


def _package_path(folder: str) -> str:
    parts = Path(folder).resolve().parts
    return "/".join(parts[parts.index("src") :]) if "src" in parts else folder


def parse_shape_weights(text: str) -> tuple[tuple[str, float], ...]:
    """``star=3,triangle=2`` as ((shape, weight), ...) in the vocabulary's order; "" is uniform."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in SHAPES:
            raise InvalidInputError(
                "shape_weights", f"{name!r} is not a shape", f"name shapes among {', '.join(SHAPES)}"
            )
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not 0 < weight < float("inf"):
            raise InvalidInputError(
                "shape_weights", f"{part!r} has no positive weight", "write each as shape=weight, e.g. star=3"
            )
        weights[name] = weight
    return tuple((name, weights[name]) for name in SHAPES if name in weights)
