"""ConceptAttention's reference fixture: the authors' original FLUX path (helblazer811/ConceptAttention,
``concept_attention/flux/dit.py``, ``dit_block.py``, ``utils.embed_concepts`` and
``flux/pipeline.compute_heatmaps_from_vectors``) on a tiny random-weight FLUX.1 with 19 double blocks.

Their model is their own class (``ModifiedFluxDiT``, Black Forest Labs' layout); it gets the weights
of ``tests/builders.py`` ``tiny_flux_pipeline(double_blocks=19)``'s diffusers transformer, mapped
key by key (:func:`bfl_state_dict`), so both compute on identical weights. Their code runs
unedited; the adaptations (at import and call time) are listed in ADAPTATIONS and SOURCE.md.
Needs ``einops`` (their requirement) importable.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import torch
from safetensors.torch import save_file

from reference import checkout_commit

SEED = 0
SIZE = 256  # 64x64 image tokens: their heatmap function reshapes to 64x64
DOUBLE_BLOCKS = 19
LAYERS = list(range(15, 19))  # their default layer_indices
READ_STEP, READ_STEPS = 2, 4  # their encode_image: noise_timestep=2 of num_steps=4
MAX_SEQUENCE_LENGTH = 512
# Modules their flux/pipeline.py reaches at import, used only by image generation, the CLI and
# watermarking, never by the functions run here.
STUBBED = ("torchvision.transforms.functional", "fire", "imwatermark")
ADAPTATIONS = [
    "Package `__init__` files skipped: `concept_attention` and `concept_attention.flux` are entered as "
    "bare namespace packages, so importing `flux/dit.py` does not run the demo pipeline imports.",
    f"Modules not installed here and unused by the code run ({', '.join(m.split('.')[0] for m in STUBBED)}) "
    "are stand-in modules (`MagicMock` attributes) so that `flux/pipeline.py` imports.",
    "Weights: their `ModifiedFluxDiT(FluxParams(...))` (hidden 32, 2 heads, 19 double blocks, no single "
    "blocks: the forward stops after the double blocks) loads the tiny diffusers transformer's weights, "
    "mapped diffusers -> BFL names (q/k/v concatenated into qkv; the rest renamed).",
    "Text encoders: their `embed_concepts(clip, t5, concepts)` gets two callables over the tiny pipeline's "
    "CLIP and T5. The tiny word-level tokenizer puts `<bos>` first, which T5's tokenizer does not, so the "
    "T5 callable returns the encoder output from the first word token on: their `[0, 0]` is then the "
    "word's first token, as with T5.",
    "Image latents and noise: the tiny pipeline's VAE and our noise (seed 0) stand in for their "
    "`encode_image` and `get_noise` (BFL's autoencoder; not part of the method); the mix at their "
    "`get_schedule(4, 4096, shift=True)[2]` is theirs (`add_noise_to_image`).",
    "Called directly (their `encode_image` loads checkpoints): the model's forward with "
    "`stop_after_multimodal_attentions=True`, vectors cached at every layer (`layer_indices=None`), then "
    "`compute_heatmaps_from_vectors(..., layer_indices=[15, 16, 17, 18], timesteps=[0], softmax=True)`.",
    "The scene prompt, its pooled CLIP vector and guidance 0 drive the image and text streams "
    "(their `generate_image`'s inputs, with its default guidance 0.0); the concepts get their zero "
    "pooled vector (`embed_concepts`).",
]


def import_theirs(checkout: Path) -> dict[str, Any]:
    """Their modules, imported from the checkout with the adaptations above."""
    import transformers  # noqa: F401  (resolved before any stand-in module exists)

    sys.path.insert(0, str(checkout))
    package = checkout / "concept_attention"
    for name, path in (("concept_attention", package), ("concept_attention.flux", package / "flux")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    for name in STUBBED:
        stand_in(name)
    dit = importlib.import_module("concept_attention.flux.dit")
    return {
        "ModifiedFluxDiT": dit.ModifiedFluxDiT,
        "FluxParams": dit.FluxParams,
        "embed_concepts": importlib.import_module("concept_attention.utils").embed_concepts,
        "get_schedule": importlib.import_module("concept_attention.flux.flux.src.flux.sampling").get_schedule,
        "compute_heatmaps_from_vectors": importlib.import_module(
            "concept_attention.flux.pipeline"
        ).compute_heatmaps_from_vectors,
    }


class _StandIn(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return MagicMock(name=f"{self.__name__}.{attr}")


def stand_in(name: str) -> None:
    """Register ``name`` and its parents as stand-in modules unless really installed."""
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        full = ".".join(parts[:depth])
        if full in sys.modules:
            continue
        if depth == 1 and importlib.util.find_spec(full) is not None:
            return
        module = _StandIn(full)
        module.__path__ = []
        module.__spec__ = importlib.machinery.ModuleSpec(full, None, is_package=True)
        sys.modules[full] = module
        if depth > 1:
            setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], module)


def bfl_state_dict(diffusers_state: dict[str, torch.Tensor], double_blocks: int) -> dict[str, torch.Tensor]:
    """A diffusers FluxTransformer2DModel's double-stream weights under BFL's names."""
    d = diffusers_state
    out = {
        "img_in.weight": d["x_embedder.weight"],
        "img_in.bias": d["x_embedder.bias"],
        "txt_in.weight": d["context_embedder.weight"],
        "txt_in.bias": d["context_embedder.bias"],
    }
    embedders = {
        "time_in": "timestep_embedder",
        "guidance_in": "guidance_embedder",
        "vector_in": "text_embedder",
    }
    for bfl, ours in embedders.items():
        for layer, linear in (("in_layer", "linear_1"), ("out_layer", "linear_2")):
            for kind in ("weight", "bias"):
                out[f"{bfl}.{layer}.{kind}"] = d[f"time_text_embed.{ours}.{linear}.{kind}"]
    for i in range(double_blocks):
        src, dst = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for side, norm, q, k, v, o, qn, kn, ff in (
            ("img", "norm1", "to_q", "to_k", "to_v", "to_out.0", "norm_q", "norm_k", "ff"),
            ("txt", "norm1_context", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "norm_added_q",
             "norm_added_k", "ff_context"),
        ):  # fmt: skip
            for kind in ("weight", "bias"):
                out[f"{dst}{side}_mod.lin.{kind}"] = d[f"{src}{norm}.linear.{kind}"]
                out[f"{dst}{side}_attn.qkv.{kind}"] = torch.cat(
                    [d[f"{src}attn.{p}.{kind}"] for p in (q, k, v)]
                )
                out[f"{dst}{side}_attn.proj.{kind}"] = d[f"{src}attn.{o}.{kind}"]
                out[f"{dst}{side}_mlp.0.{kind}"] = d[f"{src}{ff}.net.0.proj.{kind}"]
                out[f"{dst}{side}_mlp.2.{kind}"] = d[f"{src}{ff}.net.2.{kind}"]
            out[f"{dst}{side}_attn.norm.query_norm.scale"] = d[f"{src}attn.{qn}.weight"]
            out[f"{dst}{side}_attn.norm.key_norm.scale"] = d[f"{src}attn.{kn}.weight"]
    return out


def their_model(theirs: dict[str, Any], transformer: Any) -> Any:
    config = transformer.config
    params = theirs["FluxParams"](
        in_channels=config.in_channels,
        vec_in_dim=config.pooled_projection_dim,
        context_in_dim=config.joint_attention_dim,
        hidden_size=config.num_attention_heads * config.attention_head_dim,
        mlp_ratio=4.0,
        num_heads=config.num_attention_heads,
        depth=config.num_layers,
        depth_single_blocks=0,
        axes_dim=list(config.axes_dims_rope),
        theta=10_000,
        qkv_bias=True,
        guidance_embed=config.guidance_embeds,
    )
    model = theirs["ModifiedFluxDiT"](params).eval()
    missing, unexpected = model.load_state_dict(
        bfl_state_dict(transformer.state_dict(), config.num_layers), strict=False
    )
    assert not unexpected and all(key.startswith("final_layer.") for key in missing), (missing, unexpected)
    return model


def generate(authors_checkout: Path, out_dir: Path) -> None:
    from builders import tiny_flux_pipeline, two_box_image, two_box_plan
    from scenewright.backends.flux import FluxBackend, flux_image_ids
    from scenewright.executor.explain import image_tensor
    from scenewright.executor.sampler import make_generator

    theirs = import_theirs(authors_checkout)
    pipe = tiny_flux_pipeline(seed=SEED, double_blocks=DOUBLE_BLOCKS)
    backend = FluxBackend(pipe, max_sequence_length=MAX_SEQUENCE_LENGTH)
    plan = two_box_plan()
    concepts = [o.name for o in plan.objects] + ["background"]
    grid = backend.token_grid(SIZE, SIZE)

    clean = backend.encode_image(image_tensor(two_box_image(SIZE)), SIZE, SIZE)
    noise = backend.prepare_noise(1, SIZE, SIZE, make_generator(SEED))
    t = theirs["get_schedule"](READ_STEPS, grid[0] * grid[1], shift=True)[READ_STEP]
    noisy = t * noise + (1.0 - t) * clean  # their add_noise_to_image

    with torch.no_grad():
        txt, pooled, _ = pipe.encode_prompt(plan.prompt, plan.prompt, max_sequence_length=MAX_SEQUENCE_LENGTH)

        def t5(text: str) -> torch.Tensor:
            embeds = pipe._get_t5_prompt_embeds(text, max_sequence_length=MAX_SEQUENCE_LENGTH)
            return embeds[:, 1:]  # from the first word token on (the tiny tokenizer's <bos> first)

        def clip(text: str) -> torch.Tensor:
            return pipe._get_clip_prompt_embeds(text)

        concept_embeds, concept_ids, concept_vec = theirs["embed_concepts"](clip, t5, concepts)
        model = their_model(theirs, pipe.transformer)
        _, dicts = model(
            img=noisy,
            img_ids=flux_image_ids(*grid, device=noisy.device, dtype=noisy.dtype)[None],
            txt=txt,
            txt_ids=torch.zeros(1, txt.shape[1], 3),
            concepts=concept_embeds,
            concept_ids=concept_ids,
            concept_vec=concept_vec,
            y=pooled,
            timesteps=torch.full((1,), t),
            guidance=torch.zeros(1),
            stop_after_multimodal_attentions=True,
            layer_indices=None,
        )
        stacked = {
            key: torch.stack([layer[key] for layer in dicts])[None]  # (time, layers, batch, tokens, dim)
            for key in ("output_space_image_vectors", "output_space_concept_vectors")
        }
        heatmaps = theirs["compute_heatmaps_from_vectors"](
            stacked["output_space_image_vectors"],
            stacked["output_space_concept_vectors"],
            layer_indices=LAYERS,
            timesteps=[0],
            softmax=True,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "prompt": plan.prompt,
        "concepts": ",".join(concepts),
        "size": str(SIZE),
        "seed": str(SEED),
        "t": repr(float(t)),
        "layers": ",".join(map(str, LAYERS)),
    }
    save_file(
        {"maps": heatmaps[0].float().contiguous()}, out_dir / "concept_flux.safetensors", metadata=metadata
    )
    write_source(authors_checkout, out_dir, float(t))


def write_source(checkout: Path, out_dir: Path, t: float) -> None:
    lines = [
        "# ConceptAttention reference fixture",
        "",
        "- Repository: https://github.com/helblazer811/ConceptAttention",
        f"- Commit: {checkout_commit(checkout)}",
        "- Code run: the original (non-diffusers) FLUX path: `concept_attention/flux/dit.py` `ModifiedFluxDiT`"
        " with `flux/dit_block.py` `ModifiedDoubleStreamBlock`, `concept_attention/utils.py` `embed_concepts`,"
        " `flux/flux/src/flux/sampling.py` `get_schedule`, `flux/pipeline.py` `compute_heatmaps_from_vectors`.",
        "- Command: `PYTHONPATH=/path/with/einops python scripts/reference_fixtures.py concept"
        " /path/to/ConceptAttention`",
        f"- Model: `tests/builders.py` `tiny_flux_pipeline(seed={SEED}, double_blocks={DOUBLE_BLOCKS})`"
        " (random weights, guidance embedding, 2 single blocks unused here).",
        f"- Inputs: `two_box_image({SIZE})` and `two_box_plan()` (prompt 'a red circle left of a blue square';"
        " concepts circle, square, background: 'background' is not in the tiny vocabulary and encodes as"
        f" `<unk>` on both sides), noise seed {SEED}, read at t = {t:.6f} (step 2 of 4), guidance 0.",
        "- Output: `maps` (3, 64, 64), their heatmaps averaged over layers 15-18, softmax over the concepts.",
        "",
        "## Adaptations (at import and call time; their files are not edited)",
        "",
        *[f"- {text}" for text in ADAPTATIONS],
        "",
    ]
    (out_dir / "SOURCE.md").write_text("\n".join(lines))
