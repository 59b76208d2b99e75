"""Tiny random LoRAs for CPU tests, written the way diffusers' pipelines save them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import FluxPipeline, StableDiffusion3Pipeline
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

# Every projection PEFT wraps in FLUX and SD3 blocks (attention, feed-forward, single-block MLP).
TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
    "proj_mlp", "proj_out", "ff.net.2", "ff_context.net.2",
]  # fmt: skip


def random_lora(transformer: Any, path: Path, family: str = "flux", seed: int = 0, rank: int = 4) -> Path:
    """A rank-``rank`` LoRA of random weights for ``transformer``'s shape, saved as
    ``path/pytorch_lora_weights.safetensors``; the transformer is left without the adapter."""
    torch.manual_seed(seed)
    names = {name.rsplit(".", 1)[-1] for name, _ in transformer.named_modules()}
    targets = [t for t in TARGETS if t.split(".")[0] in names or t in names]
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False)
    transformer.add_adapter(config, adapter_name="random")
    for name, param in transformer.named_parameters():
        if "lora_B" in name:  # a visible change, not one that swamps the model
            param.data.mul_(0.5)
    state = get_peft_model_state_dict(transformer, adapter_name="random")
    state = {k: v.detach().clone() for k, v in state.items()}
    transformer.delete_adapters("random")
    pipeline = FluxPipeline if family == "flux" else StableDiffusion3Pipeline
    pipeline.save_lora_weights(str(path), transformer_lora_layers=state)
    return path / "pytorch_lora_weights.safetensors"
