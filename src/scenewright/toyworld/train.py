"""Train the embedded toy-world model: reproducible, resumable, with an EMA of the weights.

Rectified flow in pixel-unshuffle space: ``x_t = (1 - t) x0 + t noise``; the transformer predicts
the clean image ``x0`` (or, per the model config, ``noise - x0``, diffusers' FlowMatchEuler
convention) and the loss is on the velocity; ``t`` logit-normal. Captions are dropped
10% of the time so that classifier-free guidance works. Every ``save_every`` steps the full state
goes to ``checkpoint.pt`` (atomically) and the EMA weights to ``export/`` in the folder layout the
``tiny`` backend loads, so a run can be stopped at any time and resumed where it was.

Scaling with the machine: the model, the text encoder, the EMA and the noise generator live on
``TrainConfig.device`` (CPU or CUDA; checkpoints hold CPU tensors, so a run moves between the
two), worker processes render the scenes of later steps while the model trains
(``TrainConfig.workers``, see ``batches``), and on CUDA ``precision`` allows TF32 matmuls or bf16
autocast. None of that changes the batches, which stay a pure function of (seed, step).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scenewright.backends.base import PromptEncoding
from scenewright.backends.flux import flux_forward
from scenewright.backends.tiny import TinyBackend, TinyConfig, build_components, velocity_from_output
from scenewright.errors import InvalidInputError
from scenewright.toyworld.batches import BatchStream, RenderedBatch, SceneRecipe, render_scenes
from scenewright.toyworld.grounding import AttentionGrounding, grounding_targets
from scenewright.toyworld.model_config import CODEC_FILE, read_codec
from scenewright.toyworld.scene import ShapeWeights, random_scene

TRAINED_STEPS_FILE = "training.json"  # total steps behind exported weights, across runs
# fp32: exact fp32 matmuls; tf32: TF32 matmuls; bf16: bf16 autocast of the forward passes (and
# TF32 for what stays fp32), the weights, the optimizer and the loss in fp32. The last two only on
# CUDA: on this project's CPU (an EPYC without bf16 instructions) bf16 autocast made a step of
# the 4x4-patch model at batch 64 take 58 s instead of 4.7 s.
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass
class TrainConfig:
    out: str = "runs/toyworld"
    steps: int = 40_000
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 500
    # Linear decay to zero over the last ``decay_steps`` steps (warm-up, stable, decay): the
    # constant phase before it does not depend on ``steps``, so a run can be extended and given
    # its decay later, and the final command still reproduces it exactly.
    decay_steps: int = 0
    weight_decay: float = 0.01
    ema: float = 0.999
    caption_dropout: float = 0.1
    # Location of the logit-normal noise level: above 0 puts more samples at high noise, where
    # the count and the layout of the objects are decided.
    t_mean: float = 0.5
    # Share of each batch drawn by ``simple_groups`` (one or two single objects) instead of
    # ``random_groups``; 0 keeps the batches of runs made before this option existed.
    simple_fraction: float = 0.0
    # Share of scenes with no object at all, captioned as a black background (``empty_caption``).
    empty_fraction: float = 0.0
    # Shapes drawn more (or less) often than the others, e.g. (("star", 3.0),); empty: uniform,
    # the batches of runs made before this option existed.
    shape_weights: ShapeWeights = ()
    # Share of samples whose pooled text vector is another sample's (the next in the batch) while
    # their token sequence stays their own: the pooled vector modulates every token, and a model
    # that reads shapes from it draws a box's neighbour's shape under regional prompting, where
    # every box gets the scene's vector. 0 keeps the noise of runs made before this option.
    pooled_swap: float = 0.0
    seed: int = 0
    save_every: int = 250
    log_every: int = 25
    threads: int = 0  # 0: torch's default
    init_from: str | None = None  # start from an exported model folder (weights only)
    # Where the model trains: "cpu", "cuda" or "cuda:N" (the CLI resolves "auto"). A CUDA run
    # draws its noise on the GPU: the same batches as on the CPU, other noise and other rounding.
    device: str = "cpu"
    # Processes rendering batches ahead (0: in the training process); the batches are the same.
    workers: int = 0
    precision: str = "fp32"  # one of PRECISIONS
    # Weight of the grounding loss (``grounding``: each group's words attend to its pixels) added
    # to the velocity loss; 0 trains as runs made before this option existed.
    grounding_weight: float = 0.0
    # The grounding loss only on samples noised up to this level: below it the objects are
    # visible, above it the layout is still being decided and is left to the velocity loss.
    grounding_max_noise: float = 1.0
    grounding_kind: str = "mass"  # one of grounding.GROUNDING_KINDS

    def scenes(self) -> SceneRecipe:
        """What the scene workers need to know."""
        return SceneRecipe(
            self.seed,
            self.batch,
            self.caption_dropout,
            self.simple_fraction,
            self.empty_fraction,
            tuple(self.shape_weights),
        )


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; a CUDA device asked for must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = torch.device("meta")  # refused just below
    if device.type not in ("cpu", "cuda"):
        raise InvalidInputError(
            "device", f"{name!r} is not a device", "use --device auto, cpu, cuda or cuda:N"
        )
    if device.type == "cpu":
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        raise InvalidInputError(
            "device",
            f"{name} asked but torch {torch.__version__} sees no CUDA device here",
            "use --device cpu (or auto), or a machine with a GPU and a CUDA build of torch",
        )
    if device.index is not None and device.index >= count:
        raise InvalidInputError(
            "device",
            f"{name} asked but there are {count} CUDA devices",
            f"use --device cuda:0 to cuda:{count - 1}",
        )
    return device


def check_runtime(cfg: TrainConfig) -> torch.device:
    """The training device, after refusing settings that cannot run here (before any work)."""
    if cfg.workers < 0:
        raise InvalidInputError(
            "workers", f"{cfg.workers} is negative", "use --workers 0 (render in this process) or more"
        )
    if cfg.precision not in PRECISIONS:
        raise InvalidInputError(
            "precision",
            f"{cfg.precision!r} is not one of {', '.join(PRECISIONS)}",
            "use --precision fp32, tf32 or bf16",
        )
    device = resolve_device(cfg.device)
    if cfg.precision != "fp32" and device.type != "cuda":
        raise InvalidInputError(
            "precision",
            f"{cfg.precision} needs a CUDA device (on the CPU, bf16 autocast measured 12x slower than fp32)",
            "use --precision fp32 on the CPU, or --device cuda",
        )
    return device


def noise_seed(seed: int, step: int) -> int:
    """The noise generator's seed for a run that changed device type at ``step`` (see ``resume``)."""
    return (1 << 32) + seed * 1_000_003 + step


def tokens_from_images(images: np.ndarray, patch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel-unshuffled tokens in [-1, 1]; the uint8 images cross to the device (a quarter of the bytes)."""
    pixels = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
    return F.pixel_unshuffle(pixels, patch).flatten(2).transpose(1, 2)


def _render(step: int, cfg: TrainConfig) -> RenderedBatch:
    """``step``'s scenes drawn in this process, by this module's ``random_scene``."""
    return render_scenes(step, cfg.scenes(), random_scene)


def _batch(step: int, cfg: TrainConfig, model_cfg: TinyConfig) -> tuple[torch.Tensor, list[str]]:
    """The batch for ``step``: a pure function of (seed, step), so resuming replays nothing twice."""
    rendered = _render(step, cfg)
    return tokens_from_images(rendered.images, model_cfg.patch), rendered.captions


def swap_pooled(pooled: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """``pooled`` (batch, width) with a ``share`` of its rows, drawn by ``generator``, replaced by
    the next row's (the batch's captions differ, so the vector then names other objects)."""
    chosen = torch.rand(pooled.shape[0], generator=generator, device=generator.device) < share
    return torch.where(chosen[:, None].to(pooled.device), pooled.roll(-1, dims=0), pooled)


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it on the CPU, so that a checkpoint loads on any machine."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_on_cpu(v) for v in value)
    return value


def _allow_tf32(allowed: bool) -> None:
    """TF32 matmuls on CUDA: about 8x the fp32 throughput of an Ampere or later GPU, 10-bit mantissas."""
    torch.backends.cuda.matmul.allow_tf32 = allowed


class Trainer:
    def __init__(self, cfg: TrainConfig, model_cfg: TinyConfig) -> None:
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.device = check_runtime(cfg)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.device.type == "cuda":
            _allow_tf32(cfg.precision != "fp32")
        torch.manual_seed(cfg.seed)
        transformer, text_encoder, self.tokenizer, self.scheduler = build_components(model_cfg, cfg.seed)
        # Initialised on the CPU, then moved: the same initial weights on every device.
        self.transformer = transformer.to(self.device)
        self.text_encoder = text_encoder.to(self.device)
        self.params = [p for m in (self.transformer, self.text_encoder) for p in m.parameters()]
        self.ema = [p.detach().clone() for p in self.params]
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for m in (self.transformer, self.text_encoder):
            for name, p in m.named_parameters():
                (no_decay if p.ndim < 2 or "norm" in name or "embed" in name else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.99),
        )
        self.grounding = (
            AttentionGrounding(self.transformer, cfg.grounding_kind) if cfg.grounding_weight > 0 else None
        )
        self.grounding_terms: list[float] = []  # since the last log line
        self.step = 0
        self.prior_steps = 0  # steps behind the weights this run started from (--init-from)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)

    # -------------------------------------------------------------- state
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save(self) -> None:
        state = {
            "step": self.step,
            "prior_steps": self.prior_steps,
            "train_config": asdict(self.cfg),
            "model_config": asdict(self.model_cfg),
            "transformer": self.transformer.state_dict(),
            "text_encoder": self.text_encoder.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            # A generator's state only drives a generator of the same device type.
            "generator_device": self.device.type,
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(_on_cpu(state), tmp)
        tmp.replace(self.checkpoint_path)
        self.export(self.out / "export")

    def init_from(self, folder: str) -> None:
        """Start from exported weights (e.g. the shipped model), with a fresh optimizer."""
        source = TinyBackend.from_pretrained(folder)
        record = Path(folder) / TRAINED_STEPS_FILE
        if record.is_file():
            self.prior_steps = int(json.loads(record.read_text())["steps"])
        self.transformer.load_state_dict(source.transformer.state_dict())
        self.text_encoder.load_state_dict(source.text_encoder.state_dict())
        with torch.no_grad():
            for dst, src in zip(self.ema, self.params, strict=True):
                dst.copy_(src)

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            if self.cfg.init_from:
                self.init_from(self.cfg.init_from)
            return False
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        saved, current = state["model_config"], asdict(self.model_cfg)
        # Sampling defaults may differ, and fields added since the checkpoint was written are
        # taken as they are now; any other difference means another model.
        clash = sorted(
            k
            for k in {*saved, *current}
            if k not in SAMPLING_DEFAULTS and k in saved and saved[k] != current.get(k)
        )
        if clash:
            raise SystemExit(
                f"{self.checkpoint_path} was trained with another model config ({', '.join(clash)} differ): {saved}"
            )
        self.transformer.load_state_dict(state["transformer"])
        self.text_encoder.load_state_dict(state["text_encoder"])
        for dst, src in zip(self.ema, state["ema"], strict=True):
            dst.copy_(src)
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to the params' device
        self.step = int(state["step"])
        self.prior_steps = int(state.get("prior_steps", 0))
        self._restore_noise(state)
        return True

    def _restore_noise(self, state: dict[str, Any]) -> None:
        """The noise generator where the checkpoint left it, if it was of this device type.

        A CPU generator's state cannot drive a CUDA one (another algorithm) nor the reverse, so a
        run that moved between the two continues with a generator seeded from (seed, step):
        deterministic, but not the noise an unmoved run would have drawn.
        """
        saved = state.get("generator_device", "cpu")  # checkpoints from before --device: CPU runs
        if saved == self.device.type:
            self.generator.set_state(state["generator"])
            return
        self.generator.manual_seed(noise_seed(self.cfg.seed, self.step))
        print(
            f"note: the checkpoint's noise generator was on {saved}, this run is on {self.device.type}: "
            f"noise reseeded from (seed {self.cfg.seed}, step {self.step})",
            file=sys.stderr,
        )

    def export(self, folder: Path) -> None:
        """Write the EMA weights as a ``tiny`` backend folder."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, e in zip(self.params, self.ema, strict=True):
                p.copy_(e)
        backend = TinyBackend(
            self.transformer,
            self.text_encoder,
            self.tokenizer,
            self.scheduler,
            self.model_cfg,
            device=self.device,
        )
        tmp = folder.with_name(folder.name + ".tmp")
        backend.save_pretrained(tmp)
        (tmp / TRAINED_STEPS_FILE).write_text(json.dumps({"steps": self.prior_steps + self.step}) + "\n")
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        tmp.replace(folder)
        with torch.no_grad():
            for p, v in zip(self.params, live, strict=True):
                p.copy_(v)
        self.transformer.train()
        self.text_encoder.train()

    # -------------------------------------------------------------- training
    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.cfg.warmup)
        left = self.cfg.steps - step
        decay = min(1.0, left / self.cfg.decay_steps) if self.cfg.decay_steps else 1.0
        return self.cfg.lr * warm * max(0.0, decay)

    def train_step(self, rendered: RenderedBatch | None = None) -> float:
        """One optimizer step on ``rendered`` (``self.step``'s scenes, drawn here if not given)."""
        return float(self._step(_render(self.step, self.cfg) if rendered is None else rendered))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast for the forward passes; the weights, optimizer and loss stay fp32."""
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(self, rendered: RenderedBatch) -> torch.Tensor:
        """One optimizer step; the loss stays on the device (reading it waits for the GPU)."""
        if rendered.step != self.step:
            raise ValueError(f"the batch of step {rendered.step} given at step {self.step}")
        tokens = tokens_from_images(rendered.images, self.model_cfg.patch, self.device)
        captions = rendered.captions
        batch = tokens.shape[0]
        t = torch.sigmoid(self.cfg.t_mean + torch.randn(batch, generator=self.generator, device=self.device))
        noise = torch.randn(tokens.shape, generator=self.generator, device=self.device)
        noisy = (1 - t[:, None, None]) * tokens + t[:, None, None] * noise
        tokenized = self.tokenizer(
            captions,
            padding="max_length",
            max_length=self.model_cfg.max_text_tokens,
            truncation=True,
            return_tensors="pt",
            return_offsets_mapping=self.grounding is not None,
        )
        ids = tokenized.input_ids.to(self.device)
        grid = (self.model_cfg.image_size // self.model_cfg.patch,) * 2
        with self._autocast():
            text = self.text_encoder(ids)
            pooled = text.pooler_output
            if self.cfg.pooled_swap > 0:
                pooled = swap_pooled(pooled, self.cfg.pooled_swap, self.generator)
            encoding = PromptEncoding(captions, text.last_hidden_state, pooled)
            output = flux_forward(self.transformer, noisy, t * 1000, encoding, grid, None, None)
        # The loss is on the velocity whatever the model predicts (for x0 prediction this weights
        # the x0 error by 1/t^2, which "Back to Basics" found to work best).
        loss = F.mse_loss(velocity_from_output(self.model_cfg, output.float(), noisy, t), noise - tokens)
        total = loss  # what is optimised; the velocity loss alone is what the log reports
        if self.grounding is not None:
            # Masks are drawn only for the samples the loss applies to.
            grounded = {row for row, level in enumerate(t.tolist()) if level <= self.cfg.grounding_max_noise}
            targets = grounding_targets(
                captions,
                tokenized.offset_mapping.tolist(),
                rendered.objects,
                grid[0],
                self.model_cfg.image_size,
                self.device,
                rows=grounded,
            )
            grounding = self.grounding.loss(targets)
            if grounding is not None:
                self.grounding_terms.append(float(grounding.detach()))
                total = loss + self.cfg.grounding_weight * grounding
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1 - decay)
        self.step += 1
        return loss.detach()

    def run(self) -> None:
        resumed = self.resume()
        print(
            f"{'resumed at' if resumed else 'starting at'} step {self.step} -> {self.cfg.steps} "
            f"on {self.device} ({self.cfg.precision}, {self.cfg.workers} render workers)",
            file=sys.stderr,
        )
        self.transformer.train()
        self.text_encoder.train()
        losses: list[torch.Tensor] = []
        tick = time.perf_counter()
        stream = BatchStream(self.cfg.scenes(), self.step, self.cfg.steps, self.cfg.workers)
        with (self.out / "train.log").open("a") as log, stream:
            while self.step < self.cfg.steps:
                losses.append(self._step(stream.take(self.step)))
                if self.step % self.cfg.log_every == 0:
                    self._log(log, [float(loss) for loss in losses], time.perf_counter() - tick)
                    losses, tick = [], time.perf_counter()
                if self.step % self.cfg.save_every == 0 or self.step == self.cfg.steps:
                    self.save()

    def _log(self, log: Any, losses: list[float], elapsed: float) -> None:
        """One line in train.log and on stderr for the steps since the last one."""
        record = {
            "step": self.step,
            "loss": sum(losses) / len(losses),
            "lr": self.lr_at(self.step),
            "sec_per_step": elapsed / len(losses),
            "samples_per_sec": self.cfg.batch * len(losses) / elapsed,
            "time": time.time(),
        }
        if self.grounding_terms:
            record["grounding"] = sum(self.grounding_terms) / len(self.grounding_terms)
            self.grounding_terms = []
        log.write(json.dumps(record) + "\n")
        log.flush()
        grounding = f" grounding {record['grounding']:.4f}" if "grounding" in record else ""
        print(
            f"step {self.step} loss {record['loss']:.4f}{grounding} {record['sec_per_step']:.2f}s/step "
            f"{record['samples_per_sec']:.0f} samples/s",
            file=sys.stderr,
        )


def train(train_cfg: TrainConfig, model_cfg: TinyConfig) -> Path:
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    trainer = Trainer(train_cfg, model_cfg)
    trainer.run()
    return trainer.out / "export"


def parameter_count(model_cfg: TinyConfig) -> int:
    transformer, text_encoder, _, _ = build_components(model_cfg)
    return sum(p.numel() for m in (transformer, text_encoder) for p in m.parameters())


SAMPLING_DEFAULTS = (
    "default_steps",
    "default_guidance",
    "default_guidance_max_sigma",
    "default_background_prompt",
)


def training_command(cfg: dict[str, Any], model: dict[str, Any]) -> str:
    """The ``train-toyworld`` command line that reproduces a run (from its checkpoint's configs)."""
    line = (
        f"scenewright train-toyworld --out {cfg['out']} --steps {cfg['steps']} --batch {cfg['batch']} "
        f"--lr {cfg['lr']} --warmup {cfg['warmup']} --decay-steps {cfg.get('decay_steps', 0)} --t-mean {cfg.get('t_mean', 0.0)} "
        f"--simple-fraction {cfg.get('simple_fraction', 0.0)} --empty-fraction {cfg.get('empty_fraction', 0.0)} --ema {cfg['ema']} "
        f"--seed {cfg['seed']} --threads {cfg['threads']}"
    )
    # The device type and the precision change the noise and the rounding, so they are part of
    # the recipe; --workers changes nothing (the same batches), and neither does a device index.
    if str(cfg.get("device", "cpu")).startswith("cuda"):
        line += " --device cuda"
    if cfg.get("precision", "fp32") != "fp32":
        line += f" --precision {cfg['precision']}"
    if cfg.get("grounding_weight"):
        line += f" --grounding-weight {cfg['grounding_weight']}"
        if cfg.get("grounding_max_noise", 1.0) < 1.0:
            line += f" --grounding-max-noise {cfg['grounding_max_noise']}"
        if cfg.get("grounding_kind", "mass") != "mass":
            line += f" --grounding-kind {cfg['grounding_kind']}"
    if cfg.get("shape_weights"):
        line += " --shape-weights " + ",".join(f"{name}={weight:g}" for name, weight in cfg["shape_weights"])
    if cfg.get("pooled_swap"):
        line += f" --pooled-swap {cfg['pooled_swap']}"
    if cfg.get("init_from"):
        line += f" --init-from {cfg['init_from']}"
    defaults = asdict(TinyConfig())
    for key, value in model.items():
        if key in defaults and key not in SAMPLING_DEFAULTS and defaults[key] != value:
            line += f" --model-{key.replace('_', '-')} {value}"
    return line


def earlier_runs(init_from: str | None) -> list[str]:
    """The training commands recorded in ``init_from``'s TRAINING.md (the runs behind its weights).

    Read when shipping a run that started from another export, so that the shipped record keeps
    the whole chain of commands instead of pointing at a folder the copy is about to replace.
    """
    if not init_from:
        return []
    record = Path(init_from) / "TRAINING.md"
    if not record.is_file():
        return []
    # A command may be written over several lines with a trailing backslash.
    joined = re.sub(r"\\\n\s*", "", record.read_text())
    return [
        " ".join(line.split())
        for line in joined.splitlines()
        if line.startswith("scenewright train-toyworld") and "--ship" not in line
    ]


def _chained_commands(cfg: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """Every training command behind a run, oldest first, each starting from the previous export."""
    earlier = earlier_runs(cfg.get("init_from"))
    current = training_command(cfg, model)
    if earlier:
        previous_out = earlier[-1].split("--out ", 1)[1].split()[0]
        current = current.replace(f"--init-from {cfg['init_from']}", f"--init-from {previous_out}/export")
    return [*earlier, current]


# Files of a shipped model folder that are not weights but what was measured on it (the
# strategy options tuned on the model, auto's table): shipping new weights keeps them, and the
# shipper measures them again (``scripts/auto_tables.sh``, docs/benchmarks.md).
KEPT_ON_SHIP = ("strategy_defaults.json", "auto_table.json")


def ship(run_dir: str | Path, dest: str | Path, command: str, sampling: dict[str, Any] | None = None) -> Path:
    """Copy a run's EMA export into ``dest`` (a package model folder) with a TRAINING.md record.

    ``sampling`` sets the shipped sampling defaults (tuned on the benchmark after training);
    nothing else of the model config can change after training. The files in ``KEPT_ON_SHIP``
    already in ``dest`` stay.
    """
    import shutil

    run = Path(run_dir)
    export = run / "export"
    if not (export / CODEC_FILE).is_file():
        raise FileNotFoundError(f"{export} holds no exported model: train first")
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    lines = [json.loads(line) for line in (run / "train.log").read_text().splitlines() if line.strip()]
    recent = lines[-20:]
    loss = sum(r["loss"] for r in recent) / max(1, len(recent))
    target = Path(dest)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(export, tmp)
    sampling = sampling or {}
    unknown = set(sampling) - set(SAMPLING_DEFAULTS)
    if unknown:
        raise ValueError(
            f"only the sampling defaults ({', '.join(SAMPLING_DEFAULTS)}) can be set when shipping, not {sorted(unknown)}"
        )
    fields = read_codec(tmp)
    fields.update(sampling)
    (tmp / CODEC_FILE).write_text(json.dumps(asdict(TinyConfig(**fields)), indent=2) + "\n")
    cfg = state["train_config"]
    record = f"""# The shipped toy-world model (`{target.name}`)

EMA weights after **{state.get("prior_steps", 0) + state["step"]} steps** in all (batch {cfg["batch"]}, AdamW lr {cfg["lr"]}, EMA {cfg["ema"]},
seed {cfg["seed"]}, logit-normal t at location {cfg.get("t_mean", 0.0)}, 10% caption dropout, the model predicting
the {"clean image" if fields["prediction"] == "sample" else "velocity"}); mean training loss over the last {len(recent)} log lines: {loss:.4f}.

Produced by (the training runs in order, each starting from the previous one's export, then the
copy into the package):

```bash
{chr(10).join(_chained_commands(cfg, state["model_config"]))}
{command}
```

Sampling defaults (in `codec.json`, tuned on the benchmark after training): {", ".join(f"{k} {fields[k]}" for k in SAMPLING_DEFAULTS)}.

The run may have been stopped and resumed from `checkpoint.pt`, and given a longer `--steps` or
its `--decay-steps` while the learning rate was still constant: batches are a pure function of
(seed, step), so the command above reproduces it. A fresh machine continues from these weights
with `--init-from {_package_path(target)}`. Model sizes are in `codec.json`.
"""
    (tmp / "TRAINING.md").write_text(record)
    total = int(state.get("prior_steps", 0)) + int(state["step"])
    (tmp / TRAINED_STEPS_FILE).write_text(json.dumps({"steps": total}) + "\n")
    for name in KEPT_ON_SHIP:
        if (target / name).is_file():
            shutil.copy2(target / name, tmp / name)
    if (target / "loras").is_dir():  # the LoRAs trained for this model stay beside it
        shutil.copytree(target / "loras", tmp / "loras")
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)
    return target


def _package_path(folder: Path) -> str:
    """``folder`` as the repository path ``src/scenewright/models/...`` where it lies there."""
    parts = folder.resolve().parts
    if "src" in parts:
        return "/".join(parts[parts.index("src") :])
    return str(folder)
