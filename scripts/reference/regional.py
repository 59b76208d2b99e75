"""Reference fixtures for regional prompting: Regional-Prompting-FLUX on a tiny random FLUX.1.

Their pipeline and transformer files are copied into a scratch folder with the textual patches in
``PATCHES`` (each must apply exactly once; SOURCE.md lists them): the transformer file, which their
README has the user copy over diffusers' own, is loaded as a module of diffusers'
``models.transformers`` package so that its relative imports resolve; the pipeline file as a
plain module. Their transformer takes the weights of ``tiny_flux_pipeline``'s (same parameter
names), their processor goes on every block as their README does, and their pipeline runs each
case in ``CASES``. Each case's fixture holds the regional attention mask their pipeline built
(packed bits and a SHA-256) and the final latents, with the case itself as metadata, so that
``tests/test_reference_regional.py`` can run our defaults (``base_stream=separate``) on the same model and inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from builders import tiny_flux_pipeline

AUTHORS_REPO = "antonioo-c/Regional-Prompting-FLUX"
AUTHORS_COMMIT = "5ce6e6ee1cf897268cbc208ed04d4717055b229c"
COMMAND = "python scripts/reference_fixtures.py regional /path/to/Regional-Prompting-FLUX"
MODEL_SEED = 0
SINGLE_BLOCKS = 6
T5_TOKENS = 16  # their pipeline pads every prompt to 512 T5 tokens; 16 keeps the mask small
SIZE = 64  # pixels: 16x16 image tokens through the tiny 2x VAE and FLUX's 2x2 packing
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Case:
    """One run of their pipeline: prompts, boxes (fractions of the image, on the 1/16 token
    grid so that their nearest-exact resize and our token centres pick the same tokens) and the
    region-control settings of their ``joint_attention_kwargs``."""

    name: str
    base_prompt: str
    background: str
    regions: tuple[tuple[str, Box], ...]
    double_interval: int
    single_interval: int
    seed: int
    steps: int = 4
    inject_steps: int = 2
    guidance: float = 3.5
    base_ratio: float = 0.3


CASES = (
    # Two boxes apart, the mask in every block: the case where the single-stream blocks' base
    # image stream decides the match.
    Case(
        "blocks6",
        "a red circle left of a blue square",
        "the night sky",
        (("a red circle", (0.0625, 0.125, 0.5, 0.8125)), ("a blue square", (0.5625, 0.25, 0.9375, 0.9375))),
        double_interval=1,
        single_interval=1,
        seed=7,
    ),
    # Overlapping boxes, the mask in every second double and single block: between them their
    # blocks run the regional pass unmasked and blend the base pass in.
    Case(
        "interval2",
        "a green apple beside a yellow vase",
        "the sky",
        (("a green apple", (0.0, 0.25, 0.625, 0.75)), ("a yellow vase", (0.5, 0.0, 1.0, 1.0))),
        double_interval=2,
        single_interval=2,
        seed=8,
    ),
)

# (file, their text, ours, why): the only changes their code gets.
PATCHES: tuple[tuple[str, str, str, str], ...] = (
    (
        "pipeline_flux_regional.py",
        "H, W = height//(self.vae_scale_factor), width//(self.vae_scale_factor)",
        "H, W = height//(self.vae_scale_factor * 2), width//(self.vae_scale_factor * 2)",
        "diffusers >= 0.32 halved FluxPipeline.vae_scale_factor (the 2x2 packing is no longer in it); "
        "the mask must be sized to the token grid, as it was on their diffusers 0.31",
    ),
    (
        "pipeline_flux_regional.py",
        "image_seq_len = (int(height) // self.vae_scale_factor) * (int(width) // self.vae_scale_factor)",
        "image_seq_len = (int(height) // (self.vae_scale_factor * 2)) * (int(width) // (self.vae_scale_factor * 2))",
        "the same scale factor change, in the token count that sets the scheduler's shift",
    ),
    (
        "pipeline_flux_regional.py",
        "max_sequence_length=512,",
        f"max_sequence_length={T5_TOKENS},",
        f"geometry only: T5 prompts of {T5_TOKENS} tokens instead of 512 keep the fixtures small "
        "(two places: the base prompt and each regional prompt)",
    ),
)


def patched_copy(checkout: Path, scratch: Path) -> Path:
    """Their two files in ``scratch`` with ``PATCHES`` applied (each must match: a changed
    checkout fails here rather than producing other numbers)."""
    for name in ("pipeline_flux_regional.py", "transformer_flux.py"):
        shutil.copy(checkout / name, scratch / name)
    for name, old, new, _why in PATCHES:
        path = scratch / name
        text = path.read_text()
        if old not in text:
            raise RuntimeError(
                f"{name}: expected text not found, is the checkout at {AUTHORS_COMMIT}? {old!r}"
            )
        path.write_text(text.replace(old, new))
    return scratch


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def authors_pipeline(code: Path, single_blocks: int = SINGLE_BLOCKS) -> Any:
    """Their RegionalFluxPipeline over ``tiny_flux_pipeline``'s components, with their
    transformer carrying the tiny transformer's weights and their processor on every block."""
    transformer_module = load_module(
        "diffusers.models.transformers.regional_prompting_transformer_flux", code / "transformer_flux.py"
    )
    pipeline_module = load_module("regional_prompting_pipeline_flux", code / "pipeline_flux_regional.py")
    tiny = tiny_flux_pipeline(seed=MODEL_SEED, single_blocks=single_blocks)
    config = {
        k: v for k, v in tiny.transformer.config.items() if not k.startswith("_") and k != "out_channels"
    }
    theirs = transformer_module.FluxTransformer2DModel(**config).eval()
    theirs.load_state_dict(tiny.transformer.state_dict(), strict=True)
    processors = {}
    for name in theirs.attn_processors:
        if "transformer_blocks" in name and name.endswith("attn.processor"):
            processors[name] = pipeline_module.RegionalFluxAttnProcessor2_0()
    theirs.set_attn_processor(processors)
    components = {k: v for k, v in tiny.components.items() if v is not None}
    components["transformer"] = theirs
    return pipeline_module.RegionalFluxPipeline(**components)


def pixel_mask(box: Box) -> torch.Tensor:
    """A box as their README makes it: ones inside the pixel rectangle."""
    x0, y0, x1, y1 = (round(v * SIZE) for v in box)
    mask = torch.zeros(SIZE, SIZE)
    mask[y0:y1, x0:x1] = 1.0
    return mask


def run_case(pipe: Any, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """Their pipeline on ``case``: (final packed latents, the regional attention mask)."""
    masks = [pixel_mask(box) for _, box in case.regions]
    # The background region is what no box covers (their demos append it the same way).
    background = 1.0 - torch.stack(masks).amax(dim=0)
    out = pipe(
        prompt=case.base_prompt,
        width=SIZE,
        height=SIZE,
        num_inference_steps=case.steps,
        mask_inject_steps=case.inject_steps,
        guidance_scale=case.guidance,
        generator=torch.Generator("cpu").manual_seed(case.seed),
        output_type="latent",
        joint_attention_kwargs={
            "regional_prompts": [prompt for prompt, _ in case.regions] + [case.background],
            "regional_masks": [*masks, background],
            "double_inject_blocks_interval": case.double_interval,
            "single_inject_blocks_interval": case.single_interval,
            "base_ratio": case.base_ratio,
        },
    )
    mask = pipe.transformer.transformer_blocks[0].attn.processor.regional_mask
    return out.images.float().cpu(), mask.cpu()


def mask_digest(mask: torch.Tensor) -> str:
    return hashlib.sha256(mask.to(torch.bool).numpy().tobytes()).hexdigest()


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.to(torch.bool).numpy().reshape(-1)))


def unpack_mask(bits: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    count = int(np.prod(shape))
    return torch.from_numpy(np.unpackbits(bits.numpy())[:count].reshape(tuple(shape)).astype(bool))


def case_metadata(case: Case) -> dict[str, str]:
    return {
        "case": json.dumps(dataclasses.asdict(case)),
        "model": json.dumps(
            {"builder": "tiny_flux_pipeline", "seed": MODEL_SEED, "single_blocks": SINGLE_BLOCKS}
        ),
        "t5_tokens": str(T5_TOKENS),
        "size": str(SIZE),
        "authors_commit": AUTHORS_COMMIT,
    }


def source_text(versions: dict[str, str]) -> str:
    patches = "\n".join(f"- `{name}`: `{old}` -> `{new}`: {why}." for name, old, new, why in PATCHES)
    cases = "\n".join(
        f"- `{c.name}.safetensors`: base prompt {c.base_prompt!r}, regions "
        + ", ".join(f"{p!r} in {box}" for p, box in c.regions)
        + f", background {c.background!r}; {c.steps} steps, mask in the first {c.inject_steps}, "
        f"base_ratio {c.base_ratio}, guidance {c.guidance}, seed {c.seed}, "
        f"double/single inject intervals {c.double_interval}/{c.single_interval}."
        for c in CASES
    )
    stack = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"""# Regional-Prompting-FLUX reference fixtures

Data produced by running the authors' code; none of their code is in this repository.

- Repository: https://github.com/{AUTHORS_REPO}
- Commit: {AUTHORS_COMMIT}
- Files run: `pipeline_flux_regional.py` (RegionalFluxPipeline, RegionalFluxAttnProcessor2_0),
  `transformer_flux.py` (their FluxTransformer2DModel)
- Command (from the repository root): `{COMMAND}`
- Generator: `scripts/reference/regional.py`; run with {stack}, on CPU in float32.

Model: `tests/builders.py` `tiny_flux_pipeline(seed={MODEL_SEED}, single_blocks={SINGLE_BLOCKS})`
(2 double and {SINGLE_BLOCKS} single blocks, random weights), {SIZE}x{SIZE} pixels = 16x16 image
tokens, T5 prompts of {T5_TOKENS} tokens. Their transformer is built with the tiny transformer's
config and loads its state dict (strict); their processor is set on every block as their README
does. Each box is a pixel mask (ones inside the rectangle) as in their README; the background
region is what no box covers.

Adaptations (textual patches to a scratch copy, each required to match exactly once):
{patches}
- Loading: their `transformer_flux.py` uses relative imports (their README copies it over
  diffusers' own file); it is loaded as the module
  `diffusers.models.transformers.regional_prompting_transformer_flux` instead. No other change.

Cases (`latents`: their final packed latents, (1, 256, 16) float32; `mask_bits`: the regional
attention mask their pipeline built, [regional text; image] squared, packed with numpy's
`packbits`, its shape and SHA-256 in the metadata; the case itself in the `case` metadata):
{cases}
"""


def generate(authors_checkout: Path, out_dir: Path) -> None:
    """Run their pipeline on every case and write the fixtures and SOURCE.md to ``out_dir``."""
    import diffusers
    import transformers

    with tempfile.TemporaryDirectory() as scratch:
        code = patched_copy(authors_checkout, Path(scratch))
        for case in CASES:
            # A fresh pipeline per case: their processors keep the first mask they are given.
            latents, mask = run_case(authors_pipeline(code), case)
            metadata = {
                **case_metadata(case),
                "mask_shape": json.dumps(list(mask.shape)),
                "mask_sha256": mask_digest(mask),
            }
            save_file(
                {"latents": latents.contiguous(), "mask_bits": pack_mask(mask)},
                str(out_dir / f"{case.name}.safetensors"),
                metadata=metadata,
            )
            print(f"{case.name}: mask {tuple(mask.shape)}, latents {tuple(latents.shape)}")
    versions = {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    (out_dir / "SOURCE.md").write_text(source_text(versions))
