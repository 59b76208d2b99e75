"""Train a LoRA on an embedded model: the same scenes and captions, drawn with another palette.

The LoRA learns one change the exact evaluator can see: every object drawn in the colour that
follows its own in ``RECOLOR`` (a red circle drawn green), while the caption still says red. The
scenes, captions, noise levels and loss are the base model's recipe (``toyworld.train``); only the
adapter's weights train (PEFT, through diffusers' ``add_adapter``), and the result is saved in
diffusers' LoRA layout (``transformer.<module>.lora_A.weight``), which ``--lora`` loads like any
FLUX LoRA. ``bench object-lora`` then measures it bound to one object and on the whole image.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from scenewright.backends.base import PromptEncoding
from scenewright.backends.flux import flux_forward
from scenewright.backends.tiny import TinyBackend, velocity_from_output
from scenewright.toyworld.batches import SceneRecipe, render_scenes
from scenewright.toyworld.scene import Group, Scene, random_scene

# Each colour drawn as the next one: a cycle through the palette, so every object changes.
RECOLOR: dict[str, str] = {
    "red": "green", "green": "blue", "blue": "yellow", "yellow": "purple",
    "purple": "cyan", "cyan": "orange", "orange": "white", "white": "red",
}  # fmt: skip
# The projections the adapter wraps: every attention and feed-forward projection of both streams.
TARGETS = (
    "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out",
)  # fmt: skip
EFFECTS = ("recolor",)


@dataclass
class LoraTrainConfig:
    base: str  # the model folder the LoRA is trained for
    out: str  # the .safetensors file written (a NAME.json card beside it)
    effect: str = "recolor"
    rank: int = 8
    steps: int = 300
    batch: int = 16
    lr: float = 2e-3
    t_mean: float = 0.5
    simple_fraction: float = 0.6
    caption_dropout: float = 0.1
    seed: int = 0
    threads: int = 0
    save_every: int = 10


def recolored_scene(rng: random.Random, groups: list[Group] | None = None) -> tuple[Scene, list[Group]]:
    """A scene drawn by ``random_scene`` with every object in its ``RECOLOR`` colour; the groups
    (and so the caption) keep the colours asked for."""
    scene, chosen = random_scene(rng, groups)
    return Scene([replace(obj, color=RECOLOR[obj.color]) for obj in scene.objects], scene.size), chosen


def lora_state(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's weights under diffusers' keys (``transformer.`` + PEFT's module path)."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer)
    return {f"transformer.{key}": value.detach().float().contiguous().cpu() for key, value in state.items()}


def train_lora(cfg: LoraTrainConfig, command: str = "") -> Path:
    """Train the LoRA, saving it (and a line of log) every ``save_every`` steps."""
    from peft import LoraConfig

    if cfg.effect not in EFFECTS:
        raise ValueError(f"unknown effect {cfg.effect!r}; use one of {', '.join(EFFECTS)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    backend = TinyBackend.from_pretrained(cfg.base)
    transformer, text_encoder, model_cfg = backend.transformer, backend.text_encoder, backend.config
    transformer.requires_grad_(False)
    text_encoder.requires_grad_(False)
    transformer.add_adapter(
        LoraConfig(
            r=cfg.rank, lora_alpha=cfg.rank, init_lora_weights="gaussian", target_modules=list(TARGETS)
        )
    )
    transformer.train()
    params = [p for name, p in transformer.named_parameters() if "lora_" in name]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    recipe = SceneRecipe(
        seed=cfg.seed,
        batch=cfg.batch,
        caption_dropout=cfg.caption_dropout,
        simple_fraction=cfg.simple_fraction,
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    grid = (model_cfg.image_size // model_cfg.patch,) * 2
    losses: list[float] = []
    start = time.time()
    for step in range(cfg.steps):
        rendered = render_scenes(step, recipe, recolored_scene)
        pixels = torch.from_numpy(rendered.images).permute(0, 3, 1, 2).float() / 127.5 - 1
        tokens = F.pixel_unshuffle(pixels, model_cfg.patch).flatten(2).transpose(1, 2)
        t = torch.sigmoid(cfg.t_mean + torch.randn(tokens.shape[0], generator=generator))
        noise = torch.randn(tokens.shape, generator=generator)
        noisy = (1 - t[:, None, None]) * tokens + t[:, None, None] * noise
        ids = backend.tokenizer(
            rendered.captions, padding="max_length", max_length=model_cfg.max_text_tokens,
            truncation=True, return_tensors="pt",
        ).input_ids  # fmt: skip
        with torch.no_grad():
            text = text_encoder(ids)
        encoding = PromptEncoding(rendered.captions, text.last_hidden_state, text.pooler_output)
        output = flux_forward(transformer, noisy, t * 1000, encoding, grid, None, None)
        loss = F.mse_loss(velocity_from_output(model_cfg, output, noisy, t), noise - tokens)
        # Warm-up, then constant: a run stopped at step N holds what ``--steps N`` trains.
        lr = cfg.lr * min(1.0, (step + 1) / 20)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
            recent = sum(losses[-cfg.save_every :]) / len(losses[-cfg.save_every :])
            print(f"step {step + 1}/{cfg.steps} loss {recent:.4f} ({time.time() - start:.0f} s)", flush=True)
            save_lora(cfg, transformer, step + 1, losses, time.time() - start, command)
    return Path(cfg.out)


def save_lora(
    cfg: LoraTrainConfig,
    transformer: torch.nn.Module,
    steps: int,
    losses: list[float],
    seconds: float,
    command: str,
) -> None:
    """The adapter after ``steps`` steps and its card, each written whole (a stopped run leaves the
    last save)."""
    from safetensors.torch import save_file

    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "scenewright_effect": cfg.effect, "steps": str(steps)}
    tmp = out.with_name(out.name + ".tmp")
    save_file(lora_state(transformer), str(tmp), metadata=metadata)
    tmp.replace(out)
    command = re.sub(r"--steps \d+", f"--steps {steps}", command)
    card = {
        "name": out.stem,
        "draws": "every object in the next colour of the palette: "
        + ", ".join(f"{a} as {b}" for a, b in RECOLOR.items()),
        "trigger": f'a plan object\'s "loras": [{{"name": "{out.stem}"}}], or --lora NAME=PATH',
        "rank": cfg.rank,
        "steps": steps,
        "final_loss": round(sum(losses[-cfg.save_every :]) / max(1, len(losses[-cfg.save_every :])), 4),
        "seconds": round(seconds),
        "command": command,
    }
    card_tmp = out.with_name(out.stem + ".json.tmp")
    card_tmp.write_text(json.dumps(card, indent=2) + "\n")
    card_tmp.replace(out.with_suffix(".json"))
