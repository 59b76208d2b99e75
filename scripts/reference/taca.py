"""TACA's reference fixture: the authors' FLUX pipeline (Vchitect/TACA, infer/pipeline_taca_flux.py)
on the tiny random-weight FLUX.1 of tests/builders.py, from fixed noise to final latents.

Their code runs unedited; two things are adapted at run time, each recorded in SOURCE.md:
- their pipeline swaps the attention of modules whose class is named ``Attention``; diffusers 0.42
  names FLUX's ``FluxAttention``, so the tiny transformer's attention modules are given a subclass
  named ``Attention`` (same code, new name), without which their temperature never applies;
- their loop calls ``unload_lora_weights()`` after step 3 as if a LoRA were always loaded; none is
  (the training-free setting), so that call is made a no-op on the pipeline instance.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from reference import checkout_commit

# The tiny model and the prompt the test re-creates; their code hard-codes 512 text tokens.
PROMPT = "a red circle left of a blue square"
SIZE = 32
GUIDANCE = 3.5
STEPS = (4, 6)  # 3 of 4 steps (a share of 10% would take 1) and 3 of 6
SEED = 0
MAX_SEQUENCE_LENGTH = 512
ADAPTATIONS = [
    "Attention modules renamed: each `FluxAttention` of the tiny transformer gets its class replaced by a "
    "subclass named `Attention` (no other change), so that their `'Attention' == module.__class__.__name__` "
    "match finds them in diffusers 0.42; as published, the match finds nothing there and no temperature applies.",
    "`pipe.unload_lora_weights` replaced by a no-op on the instance: their loop calls it after step 3 "
    "because `is_lora_loaded = True` is hard-coded; no LoRA is loaded here (the training-free setting).",
]


def load_their_pipeline(checkout: Path) -> Any:
    """Their ``infer/pipeline_taca_flux.py`` as a module, imported from the checkout."""
    path = checkout / "infer" / "pipeline_taca_flux.py"
    spec = importlib.util.spec_from_file_location("taca_authors_pipeline_flux", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: not TACA's repository")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def rename_attention(transformer: torch.nn.Module) -> int:
    """Give every attention module a class named ``Attention`` (a plain subclass of its own)."""
    renamed: dict[type, type] = {}
    count = 0
    for module in transformer.modules():
        cls = type(module)
        if cls.__name__ == "FluxAttention":
            renamed.setdefault(cls, type("Attention", (cls,), {}))
            module.__class__ = renamed[cls]
            count += 1
    return count


def fixture_noise() -> torch.Tensor:
    """Packed (1, tokens, channels) noise for a SIZE x SIZE image of the tiny FLUX."""
    from builders import tiny_flux_pipeline
    from scenewright.backends.flux import FluxBackend
    from scenewright.executor.sampler import make_generator

    backend = FluxBackend(tiny_flux_pipeline(seed=SEED), max_sequence_length=MAX_SEQUENCE_LENGTH)
    return backend.prepare_noise(1, SIZE, SIZE, make_generator(SEED))


def generate(authors_checkout: Path, out_dir: Path) -> None:
    from builders import tiny_flux_pipeline

    theirs = load_their_pipeline(authors_checkout)
    tiny = tiny_flux_pipeline(seed=SEED)
    names = ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer")
    pipe = theirs.FluxPipeline(**{name: tiny.components[name] for name in names})
    count = rename_attention(pipe.transformer)
    pipe.unload_lora_weights = lambda *args, **kwargs: None
    noise = fixture_noise()
    tensors = {"noise": noise.contiguous()}
    for steps in STEPS:
        with torch.no_grad():
            latents = pipe(
                PROMPT,
                height=SIZE,
                width=SIZE,
                num_inference_steps=steps,
                guidance_scale=GUIDANCE,
                latents=noise.clone(),
                output_type="latent",
                max_sequence_length=MAX_SEQUENCE_LENGTH,
            ).images
        tensors[f"latents_{steps}_steps"] = latents.contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"prompt": PROMPT, "size": str(SIZE), "guidance": str(GUIDANCE), "seed": str(SEED)}
    save_file(tensors, out_dir / "taca_flux.safetensors", metadata=metadata)
    write_source(authors_checkout, out_dir, count)


def write_source(checkout: Path, out_dir: Path, renamed: int) -> None:
    lines = [
        "# TACA reference fixture",
        "",
        "- Repository: https://github.com/Vchitect/TACA",
        f"- Commit: {checkout_commit(checkout)}",
        "- Code run: `infer/pipeline_taca_flux.py` (`FluxPipeline.__call__`, their attention processor"
        " with `flex_attention` and `score_mod`: gamma 1.2 on image-query x text-key logits while step < 3).",
        "- Command: `python scripts/reference_fixtures.py taca /path/to/TACA`",
        f"- Model: `tests/builders.py` `tiny_flux_pipeline(seed={SEED})` (2 double, 2 single blocks, random"
        f" weights, guidance embedding), {SIZE}x{SIZE} pixels (64 image tokens), 512 T5 tokens.",
        f"- Inputs: prompt {PROMPT!r}, guidance {GUIDANCE}, steps {', '.join(map(str, STEPS))}, the packed"
        f" noise stored as `noise` (our `FluxBackend.prepare_noise`, seed {SEED}).",
        "- Outputs: `latents_<N>_steps`, their pipeline's final packed latents (`output_type='latent'`).",
        "",
        "## Adaptations (at run time; their files are not edited)",
        "",
        *[f"- {text}" for text in ADAPTATIONS],
        f"  ({renamed} attention modules renamed.)",
        "",
    ]
    (out_dir / "SOURCE.md").write_text("\n".join(lines))
