"""Quantized loading: ``--quantize`` mapped to diffusers' ``PipelineQuantizationConfig``.

The transformer and the family's large text encoder (T5-XXL, Qwen2.5-VL) are what fill a card, so
those two are quantized; the VAE and CLIP encoders stay in the pipeline's dtype. A backend that
cannot run here (bitsandbytes needs CUDA; torchao must be installed) is refused in one line
before any weights load.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from scenewright.backends.specs import QUANTIZE_CHOICES
from scenewright.errors import InvalidInputError

# The text encoder worth quantizing per family (diffusers' component name).
LARGE_TEXT_ENCODER = {"flux": "text_encoder_2", "sd3": "text_encoder_3", "qwen-image": "text_encoder",
                      "chroma": "text_encoder"}  # fmt: skip


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_quantize(mode: str | None, family: str, device: torch.device) -> str | None:
    """``--quantize`` as None or a mode this machine can run, or one line saying why not."""
    if mode in (None, "", "none"):
        return None
    if mode not in QUANTIZE_CHOICES:
        raise InvalidInputError(
            "quantize", f"unknown mode {mode!r}", f"use one of {', '.join(QUANTIZE_CHOICES)}"
        )
    if family not in LARGE_TEXT_ENCODER:
        raise InvalidInputError(
            "quantize", f"the {family} backend is small and loads as it is", "drop --quantize"
        )
    if mode.startswith("bnb"):
        if device.type != "cuda":
            raise InvalidInputError(
                "quantize",
                "bitsandbytes runs on CUDA only",
                "pass --device cuda, or --quantize torchao-int8 here",
            )
        if not _installed("bitsandbytes"):
            raise InvalidInputError("quantize", "bitsandbytes is not installed", "pip install bitsandbytes")
    elif not _installed("torchao"):
        raise InvalidInputError("quantize", "torchao is not installed", "pip install 'scenewright[torchao]'")
    return mode


def quantization_config(mode: str | None, family: str, dtype: torch.dtype) -> Any:
    """The ``quantization_config`` for ``from_pretrained`` (None: load as stored): one config per
    quantized component, diffusers' for the transformer and transformers' for the text encoder."""
    if mode is None:
        return None
    import diffusers
    import transformers
    from diffusers import PipelineQuantizationConfig

    if mode.startswith("bnb"):
        kwargs: dict[str, Any] = (
            {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": dtype}
            if mode == "bnb-4bit"
            else {"load_in_8bit": True}
        )
        configs = (diffusers.BitsAndBytesConfig(**kwargs), transformers.BitsAndBytesConfig(**kwargs))
    else:
        from torchao.quantization import Int8WeightOnlyConfig

        configs = (
            diffusers.TorchAoConfig(Int8WeightOnlyConfig()),
            transformers.TorchAoConfig(Int8WeightOnlyConfig()),
        )
    mapping = {"transformer": configs[0], LARGE_TEXT_ENCODER[family]: configs[1]}
    return PipelineQuantizationConfig(quant_mapping=mapping)
