"""The published geometries of FLUX.1 and SD3.5, built offline with random weights.

``scenewright bench models`` measures what the strategies cost on the real architectures without
downloading a checkpoint: each model here is the diffusers config of its transformer, VAE and
scheduler written into our code (no hub access), filled with random weights. Random weights do
the same arithmetic as trained ones; only what depends on the image drawn (Stitch's redraws,
NUMINA's count layouts, refine's rounds) can take other branches than with a trained model.

Sources (public copies of the configs, found with code search; nothing downloaded at run time):
- FLUX.1 transformer: Black Forest Labs' ``flux-dev`` parameters (in_channels 64, hidden 3072 =
  24 heads of 128, depth 19 + 38 single blocks, axes_dim (16, 56, 56), vec_in_dim 768 = pooled,
  context_in_dim 4096 = joint) in diffusers' names; the guidance embedding only in dev. Counted on
  the meta device: 11.9B parameters (published: 12B).
- FLUX.1 VAE: ``vae/config.json`` of FLUX.1-schnell (dev's is the same network).
- SD3.5 transformers: two copies of diffusers' ``transformer/config.json`` for medium (24 layers,
  dual attention in 0..12, pos_embed_max_size 384) and large (38 layers, 38 heads, caption
  projection 2432, pos_embed_max_size 192, no dual attention); a third copy gives large the
  medium's 384 and 0..12, which the other two contradict. 2.24B and 8.06B parameters
  (published: 2.5B and 8.1B).
- SD3.5 VAE: ``vae/config.json`` of medium and large, which agree (scaling 1.5305, shift 0.0609).
- Z-Image-Turbo transformer: the ``transformer/config.json`` of Tongyi-MAI/Z-Image-Turbo as public
  ports quote it (dim 3840 = 30 heads of 128, 30 single-stream layers after 2 noise and 2 context
  refiner layers, n_kv_heads 30, cap_feat_dim 2560 = Qwen3-4B's width, RoPE axes (32, 48, 48) over
  (1024, 512, 512) positions, theta 256), the same as ZImageTransformer2DModel's defaults in
  diffusers 0.42; 6.15B parameters counted on the meta device (published: 6B). Its VAE is FLUX.1's.
  Its captions are the prompt's own Qwen3-4B tokens (chat template included, padded to a multiple
  of 32, at most 512: ZImagePipeline's ``max_sequence_length``), not a fixed padded length.
- Schedulers: see ``SCHEDULERS``.

Text encoders are not the real ones (CLIP-L 123M, OpenCLIP-G 695M and T5-XXL 4.7B parameters):
they are small random CLIP and T5 models with the real output widths (CLIP-L 768, CLIP-G 1280,
T5 4096), so the transformer sees exactly the shapes it sees in production, and a word-level
tokenizer made locally. The text sequence lengths are the pipelines' own: FLUX.1-dev 512 T5 tokens
(FluxPipeline's default), schnell 256 (the maximum diffusers documents for it), SD3.5 77 CLIP +
256 T5 (StableDiffusion3Pipeline's default).

``scale="small"`` keeps every width, head count and the latent geometry but only a few blocks, a
light VAE (same 16 latent channels and 8x stride, narrow convolutions: the real one decodes a
256x256 image in about 20 s on two CPU cores, more than the small transformer costs), a smaller
SD3 position table and a short T5 sequence, so that a CPU runs it.

``scale="narrow"`` is for counting work, not for timing it: the published image and text
sequences (1024x1024 pixels, 28 steps, the full T5 length by default) through a transformer of
the small scale's blocks cut to 2 heads of 8, so that a CPU runs a strategy's every transformer
call at the real token counts in seconds; :mod:`scenewright.bench.work` turns the calls counted
into the floating-point work they take on the published model. Its seconds and memory describe
the narrow model only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

MODEL_NAMES: tuple[str, ...] = ("flux-dev", "flux-schnell", "sd3.5-medium", "sd3.5-large", "z-image")
MODEL_NAMES += ("qwen-image", "chroma", "flux2-dev", "flux2-klein-4b", "flux2-klein-9b")
SCALES = ("full", "small", "narrow")

_FLUX_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}

_SD35_MEDIUM_TRANSFORMER: dict[str, Any] = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "out_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "pos_embed_max_size": 384,
    "qk_norm": "rms_norm",
    "dual_attention_layers": tuple(range(13)),
}

_SD35_LARGE_TRANSFORMER: dict[str, Any] = {
    **_SD35_MEDIUM_TRANSFORMER,
    "num_layers": 38,
    "num_attention_heads": 38,
    "caption_projection_dim": 2432,
    "pos_embed_max_size": 192,
    "dual_attention_layers": (),
}

_Z_IMAGE_TRANSFORMER: dict[str, Any] = {
    "all_patch_size": (2,),
    "all_f_patch_size": (1,),
    "in_channels": 16,
    "dim": 3840,
    "n_layers": 30,
    "n_refiner_layers": 2,
    "n_heads": 30,
    "n_kv_heads": 30,
    "norm_eps": 1e-5,
    "qk_norm": True,
    "cap_feat_dim": 2560,
    "rope_theta": 256.0,
    "t_scale": 1000.0,
    "axes_dims": (32, 48, 48),
    "axes_lens": (1024, 512, 512),
}

_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 1024,
    "force_upcast": True,
    "mid_block_add_attention": True,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
_FLUX_VAE = {**_VAE, "scaling_factor": 0.3611, "shift_factor": 0.1159}

# Qwen-Image (published: 20B): 60 dual-stream blocks of 24 heads of 128, Qwen2.5-VL-7B's 3584-wide
# last hidden state as text, 2x2 patches of 16 latent channels, as in diffusers'
# QwenImageTransformer2DModel defaults and the model card; counted on the meta device: 20.4B.
# Its text is the prompt's own tokens after the template's system part (at most 1024; the
# pipeline's max_sequence_length default 512), so the bench's prompt sets its length.
_QWEN_IMAGE_TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
}
# Its video VAE (AutoencoderKLQwenImage): 16 latent channels, 8x spatial stride; the per-channel
# latent statistics are left at 0 and 1 (they change no shape or cost).
_QWEN_IMAGE_VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": (1, 2, 4, 4),
    "num_res_blocks": 2,
    "temperal_downsample": (False, True, True),
    "latents_mean": (0.0,) * 16,
    "latents_std": (1.0,) * 16,
}
# Chroma (published: 8.9B): FLUX.1-schnell's 19 + 38 blocks with the per-block modulation pruned
# into one approximator (64 channels, 5 layers of 5120), T5-XXL only (512 tokens, ChromaPipeline's
# default), FLUX.1's VAE; diffusers' ChromaTransformer2DModel defaults. Counted: 8.9B.
_CHROMA_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "axes_dims_rope": (16, 56, 56),
    "approximator_num_channels": 64,
    "approximator_hidden_dim": 5120,
    "approximator_layers": 5,
}
# FLUX.2. Transformers: dev is Flux2Transformer2DModel's own defaults in diffusers 0.42 (8 double and
# 48 single blocks, 48 heads of 128, text 15360 = 3 x Mistral Small's 5120, 4 rotary axes of 32,
# theta 2000, MLP ratio 3, guidance embedding), counted on the meta device: 32.2B parameters
# (published: 32B). klein's, from public copies of their transformer/config.json: 4B has 5 + 20
# blocks of 24 heads and text 7680 (3 x Qwen3-4B's 2560), 9B 8 + 24 blocks of 32 heads and text
# 12288 (3 x Qwen3-8B's 4096), neither with a guidance embedding: 3.9B and 9.1B parameters.
# VAE: AutoencoderKLFlux2's defaults (32 latent channels, 2x2 patches normalised by batch-norm
# statistics), which public copies of FLUX.2's vae/config.json match. Text: 512 tokens, both
# pipelines' default max_sequence_length.
_FLUX2_DEV_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 128,
    "num_layers": 8,
    "num_single_layers": 48,
    "attention_head_dim": 128,
    "num_attention_heads": 48,
    "joint_attention_dim": 15360,
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": (32, 32, 32, 32),
    "rope_theta": 2000,
    "guidance_embeds": True,
}
_FLUX2_KLEIN_4B_TRANSFORMER: dict[str, Any] = {
    **_FLUX2_DEV_TRANSFORMER,
    "num_layers": 5,
    "num_single_layers": 20,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,
    "guidance_embeds": False,
}
_FLUX2_KLEIN_9B_TRANSFORMER: dict[str, Any] = {
    **_FLUX2_KLEIN_4B_TRANSFORMER,
    "num_layers": 8,
    "num_single_layers": 24,
    "num_attention_heads": 32,
    "joint_attention_dim": 12288,
}
_FLUX2_VAE: dict[str, Any] = {
    **{k: v for k, v in _VAE.items() if k != "force_upcast"},
    "latent_channels": 32,
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "batch_norm_eps": 1e-4,
}
_SD35_VAE = {**_VAE, "scaling_factor": 1.5305, "shift_factor": 0.0609}

# FLUX.1-dev: a resolution-dependent shift (FluxPipeline computes mu from the token count), as in
# a public copy of its scheduler_config.json. FLUX.1-schnell: no shift, and SD3.5: a fixed shift
# of 3, both from memory of the published files and not confirmed here (one third-party SD3.5
# loader turns dynamic shifting on). A schedule's values change no shape and no cost.
_FLUX_DEV_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
SCHEDULERS: dict[str, dict[str, Any]] = {
    "flux-dev": _FLUX_DEV_SCHEDULER,
    # FLUX.2's pipelines give the scheduler its shift mu themselves (an empirical fit in tokens and steps).
    "flux2-dev": _FLUX_DEV_SCHEDULER,
    "flux2-klein-4b": _FLUX_DEV_SCHEDULER,
    "flux2-klein-9b": _FLUX_DEV_SCHEDULER,
    "flux-schnell": {**_FLUX_DEV_SCHEDULER, "shift": 1.0, "use_dynamic_shifting": False},
    "sd3.5-medium": {"num_train_timesteps": 1000, "shift": 3.0},
    "sd3.5-large": {"num_train_timesteps": 1000, "shift": 3.0},
    # Z-Image-Turbo: a fixed shift of 3 (public ports of its scheduler_config.json).
    "z-image": {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False},
    # Qwen-Image: an exponential resolution-dependent shift up to 8192 tokens with a terminal
    # sigma of 0.02; Chroma: FLUX.1-dev's. Both from memory of the published files, not confirmed.
    "qwen-image": {
        **_FLUX_DEV_SCHEDULER,
        "shift": 1.0,
        "max_shift": 0.9,
        "max_image_seq_len": 8192,
        "shift_terminal": 0.02,
        "time_shift_type": "exponential",
    },
    "chroma": _FLUX_DEV_SCHEDULER,
}

# What --scale small keeps of each transformer: every width and head count, a few blocks.
_SMALL_BLOCKS: dict[str, dict[str, Any]] = {
    "flux-dev": {"num_layers": 1, "num_single_layers": 1},
    "flux-schnell": {"num_layers": 1, "num_single_layers": 1},
    # One dual-attention block (SD3.5-medium's MMDiT-X) and one plain joint block. SD3's position
    # table (pos_embed_max_size a side, cropped to the image's grid at run time) shrinks to 64 a
    # side (images up to 1024 px): the published 384 is a 147456 x 1536 buffer, 0.9 GB and 20 s
    # of float64 sines to build on a CPU, for the same shapes at run time.
    "sd3.5-medium": {"num_layers": 2, "dual_attention_layers": (0,), "pos_embed_max_size": 64},
    "sd3.5-large": {"num_layers": 2, "pos_embed_max_size": 64},
    "z-image": {"n_layers": 2, "n_refiner_layers": 1},
    "qwen-image": {"num_layers": 1},
    "chroma": {"num_layers": 1, "num_single_layers": 1},
    "flux2-dev": {"num_layers": 1, "num_single_layers": 1},
    "flux2-klein-4b": {"num_layers": 1, "num_single_layers": 1},
    "flux2-klein-9b": {"num_layers": 1, "num_single_layers": 1},
}
# What --scale narrow changes on top of --scale small: 2 heads of 8 (FLUX's rotary axes must sum
# to the head size), and an SD3 position table wide enough for 2048-pixel images.
_NARROW_WIDTHS: dict[str, dict[str, Any]] = {
    "flux": {"num_attention_heads": 2, "attention_head_dim": 8, "axes_dims_rope": (2, 2, 4)},
    "flux2": {"num_attention_heads": 2, "attention_head_dim": 8, "axes_dims_rope": (2, 2, 2, 2)},
    "sd3": {
        "num_attention_heads": 2,
        "attention_head_dim": 8,
        "caption_projection_dim": 16,
        "pos_embed_max_size": 128,
    },
    "z-image": {"dim": 16, "n_heads": 2, "n_kv_heads": 2, "axes_dims": (4, 2, 2)},
    "qwen-image": {"num_attention_heads": 2, "attention_head_dim": 8, "axes_dims_rope": (2, 2, 4)},
    "chroma": {"num_attention_heads": 2, "attention_head_dim": 8, "axes_dims_rope": (2, 2, 4)},
}
# The light VAE of --scale small: 4 levels (the 8x stride) and 16 latent channels as published.
_SMALL_VAE: dict[str, Any] = {
    "block_out_channels": (16, 16, 16, 16),
    "layers_per_block": 1,
    "norm_num_groups": 8,
}
_SMALL_QWEN_VAE: dict[str, Any] = {"base_dim": 8, "num_res_blocks": 1}
SMALL_T5_TOKENS = 32
SMALL_SIZE = 256
FULL_SIZE = 1024

# Widths of the small text encoders' hidden layers and heads (their outputs keep the real widths).
_CLIP_LAYERS = 2  # SD3 reads CLIP's penultimate hidden state, so at least two
_T5_HEADS, _T5_KV, _T5_FF = 4, 64, 256


@dataclass(frozen=True)
class ModelGeometry:
    """One model's architecture: what ``build_pipeline`` constructs."""

    name: str
    family: str  # "flux", "sd3", "flux2", "z-image", "qwen-image" or "chroma"
    scale: str
    transformer: Mapping[str, Any]
    vae: Mapping[str, Any]
    scheduler: Mapping[str, Any]
    t5_tokens: int  # the T5 sequence the pipeline pads prompts to
    clip_widths: tuple[int, ...]  # hidden (= pooled) width of each CLIP encoder
    t5_width: int = 4096
    clip_tokens: int = 77
    notes: tuple[str, ...] = field(default=())

    @property
    def heads(self) -> int:
        if self.family == "z-image":
            return int(self.transformer["n_heads"])
        return int(self.transformer["num_attention_heads"])

    @property
    def head_dim(self) -> int:
        if self.family == "z-image":
            return int(self.transformer["dim"]) // self.heads
        return int(self.transformer["attention_head_dim"])

    @property
    def hidden_size(self) -> int:
        """Width of the joint attention stream (heads x head size)."""
        return self.heads * self.head_dim

    @property
    def blocks(self) -> dict[str, int]:
        """Block counts by kind, the way strategies name blocks (Z-Image's refiners: per modality)."""
        if self.family == "z-image":
            return {
                "joint": int(self.transformer["n_layers"]),
                "refiner": int(self.transformer["n_refiner_layers"]),
            }
        if self.family == "qwen-image":
            return {"double": int(self.transformer["num_layers"])}
        if self.family in ("flux", "flux2", "chroma"):
            return {
                "double": int(self.transformer["num_layers"]),
                "single": int(self.transformer["num_single_layers"]),
            }
        dual = [
            i for i in self.transformer.get("dual_attention_layers", ()) if i < self.transformer["num_layers"]
        ]
        return {"joint": int(self.transformer["num_layers"]), "dual_attention": len(dual)}

    @property
    def size_multiple(self) -> int:
        """Pixels per image token along a side: the VAE's 8 times the patch (FLUX packs 2x2)."""
        return 16

    @property
    def max_tokens_per_side(self) -> int | None:
        """SD3's position table limits the token grid (pos_embed_max_size); FLUX's RoPE does not."""
        size = self.transformer.get("pos_embed_max_size")
        return int(size) if size is not None else None

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (what the benchmark report records)."""
        return {
            "name": self.name,
            "family": self.family,
            "scale": self.scale,
            "hidden_size": self.hidden_size,
            "heads": self.heads,
            "head_dim": self.head_dim,
            "blocks": self.blocks,
            "t5_tokens": self.t5_tokens,
            "clip_tokens": self.clip_tokens,
            "clip_widths": list(self.clip_widths),
            "t5_width": self.t5_width,
            "transformer": _jsonable(self.transformer),
            "vae": _jsonable(self.vae),
            "scheduler": _jsonable(self.scheduler),
            "notes": list(self.notes),
        }


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


_PUBLISHED: dict[str, ModelGeometry] = {
    "flux-dev": ModelGeometry(
        "flux-dev", "flux", "full", _FLUX_TRANSFORMER, _FLUX_VAE, SCHEDULERS["flux-dev"], 512, (768,)
    ),
    "flux-schnell": ModelGeometry(
        "flux-schnell",
        "flux",
        "full",
        {**_FLUX_TRANSFORMER, "guidance_embeds": False},
        _FLUX_VAE,
        SCHEDULERS["flux-schnell"],
        256,
        (768,),
    ),
    "sd3.5-medium": ModelGeometry(
        "sd3.5-medium",
        "sd3",
        "full",
        _SD35_MEDIUM_TRANSFORMER,
        _SD35_VAE,
        SCHEDULERS["sd3.5-medium"],
        256,
        (768, 1280),
    ),
    "sd3.5-large": ModelGeometry(
        "sd3.5-large",
        "sd3",
        "full",
        _SD35_LARGE_TRANSFORMER,
        _SD35_VAE,
        SCHEDULERS["sd3.5-large"],
        256,
        (768, 1280),
    ),
    # The text width is Qwen3-4B's (``t5_width``), and ``t5_tokens`` its caption limit.
    "z-image": ModelGeometry(
        "z-image", "z-image", "full", _Z_IMAGE_TRANSFORMER, _FLUX_VAE, SCHEDULERS["z-image"], 512, (), 2560
    ),
    # t5_width holds the width of the text encoder's output (Qwen2.5-VL-7B: 3584); no CLIP.
    "qwen-image": ModelGeometry(
        "qwen-image",
        "qwen-image",
        "full",
        _QWEN_IMAGE_TRANSFORMER,
        _QWEN_IMAGE_VAE,
        SCHEDULERS["qwen-image"],
        512,
        (),
        t5_width=3584,
    ),
    "chroma": ModelGeometry(
        "chroma", "chroma", "full", _CHROMA_TRANSFORMER, _FLUX_VAE, SCHEDULERS["chroma"], 512, ()
    ),
    # FLUX.2: no CLIP; "t5" stands for the one text encoder (its stacked width and sequence).
    **{
        name: ModelGeometry(
            name,
            "flux2",
            "full",
            config,
            _FLUX2_VAE,
            SCHEDULERS[name],
            512,
            (),
            config["joint_attention_dim"],
        )
        for name, config in (
            ("flux2-dev", _FLUX2_DEV_TRANSFORMER),
            ("flux2-klein-4b", _FLUX2_KLEIN_4B_TRANSFORMER),
            ("flux2-klein-9b", _FLUX2_KLEIN_9B_TRANSFORMER),
        )
    },
}


def _small_vae(family: str) -> dict[str, Any]:
    return _SMALL_QWEN_VAE if family == "qwen-image" else _SMALL_VAE


def geometry(name: str, scale: str = "full", t5_tokens: int | None = None) -> ModelGeometry:
    """The geometry of ``name`` at ``scale``; ``t5_tokens`` overrides the T5 sequence length."""
    from scenewright.errors import InvalidInputError

    if name not in _PUBLISHED:
        raise InvalidInputError("models", f"unknown model '{name}'", f"use some of {', '.join(MODEL_NAMES)}")
    if scale not in SCALES:
        raise InvalidInputError("scale", f"unknown scale '{scale}'", f"use --scale {' or '.join(SCALES)}")
    published = _PUBLISHED[name]
    if scale == "full":
        result = published
    elif scale == "narrow":
        blocks = {**_SMALL_BLOCKS[name], **_NARROW_WIDTHS[published.family]}
        result = replace(
            published,
            scale="narrow",
            transformer={**published.transformer, **blocks},
            vae={**published.vae, **_small_vae(published.family)},
            notes=(
                f"narrow, for counting work: {', '.join(f'{k}={v}' for k, v in blocks.items())}; light VAE "
                f"{_SMALL_VAE['block_out_channels']}; T5 {published.t5_tokens} tokens as published",
            ),
        )
    else:
        blocks = _SMALL_BLOCKS[name]
        result = replace(
            published,
            scale="small",
            transformer={**published.transformer, **blocks},
            vae={**published.vae, **_small_vae(published.family)},
            t5_tokens=SMALL_T5_TOKENS,
            notes=(
                f"small: {', '.join(f'{k}={v}' for k, v in blocks.items())} (published: "
                + ", ".join(f"{k}={published.transformer[k]}" for k in blocks)
                + f"); light VAE {_SMALL_VAE['block_out_channels']}; T5 {SMALL_T5_TOKENS} tokens "
                f"(published {published.t5_tokens})",
            ),
        )
    if t5_tokens is not None:
        result = replace(result, t5_tokens=t5_tokens)
    return result


# ----------------------------------------------------------------------------- tokenizer

_BASE_WORDS = (
    "a an the and of with on in at to by beside near next left right above below under over behind front "
    "one two three four five six seven eight nine ten dozen "
    "red blue green yellow orange purple pink brown black white gray grey "
    "apple apples vase vases cat cats dog dogs night day sky background photo of table room"
)
_WORD = re.compile(r"\w+|[^\w\s]")


def word_tokenizer(max_length: int, extra_words: Sequence[str] = ()) -> Any:
    """A word-level fast tokenizer made locally (no download): lowercase words and punctuation,
    ``<bos> ... <eos>`` around each prompt, ``<eos>`` with the highest id (CLIP pools there).

    ``extra_words`` (e.g. the benchmark prompt's) join the vocabulary; any other word is ``<unk>``,
    which changes no shape. Offsets are exact, so the backends' word-to-token maps work as with
    the real tokenizers.
    """
    words: list[str] = []
    for word in [*_BASE_WORDS.split(), *(w for text in extra_words for w in _WORD.findall(text.lower()))]:
        if word not in words:
            words.append(word)
    return word_level_tokenizer(words, max_length)


def word_level_tokenizer(words: Sequence[str], max_length: int) -> Any:
    """The tokenizer of :func:`word_tokenizer` over exactly ``words`` (the tests' pipelines use it)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<bos>"]
    vocab = {w: i for i, w in enumerate([*specials, *words, "<eos>"])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=max_length,
    )


_CHAT_SPECIALS = ("<|im_start|>", "<|im_end|>")


def chat_tokenizer(template: str, words: Sequence[str]) -> Any:
    """A word-level stand-in for Qwen2's tokenizer, made locally: its chat tokens as special
    tokens, the template's words and ``words`` in the vocabulary, nothing added around a text."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    splitter = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    text = template.replace("{}", " ")
    for special in _CHAT_SPECIALS:
        text = text.replace(special, " ")
    vocab_words: list[str] = []
    for piece, _ in splitter.pre_tokenize_str(f"{text} {' '.join(words)}".lower()):
        if piece not in vocab_words:
            vocab_words.append(piece)
    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<unk>", *_CHAT_SPECIALS, *vocab_words])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_CHAT_SPECIALS),
        model_max_length=2048,
    )


def qwen_vl_encoder(width: int, vocab_size: int, layers: int = 1, heads: int = 2) -> Any:
    """A small random Qwen2.5-VL whose last hidden state is ``width`` wide (Qwen-Image's text)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    head_dim = width // heads
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": width,
            "intermediate_size": 16,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "rope_scaling": {
                "mrope_section": [head_dim // 8, head_dim // 8, head_dim // 4],
                "rope_type": "default",
                "type": "default",
            },
            "rope_theta": 1000000.0,
            "vocab_size": vocab_size,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": width,
        },
        hidden_size=width,
        vocab_size=vocab_size,
        bos_token_id=0,
        eos_token_id=0,
        vision_start_token_id=vocab_size - 3,
        vision_end_token_id=vocab_size - 2,
        vision_token_id=vocab_size - 1,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def with_chat_text(pipe: Any, words: Sequence[str], width: int) -> Any:
    """Give a QwenImagePipeline built without text parts :func:`chat_tokenizer` and
    :func:`qwen_vl_encoder`, and drop the template's system part at the count this tokenizer gives
    it (the real pipeline drops the real tokenizer's 34)."""
    tokenizer = chat_tokenizer(pipe.prompt_template_encode, words)
    pipe.tokenizer = tokenizer
    pipe.text_encoder = qwen_vl_encoder(width, len(tokenizer) + 3)
    system = pipe.prompt_template_encode.split("{}")[0]
    pipe.prompt_template_encode_start_idx = len(tokenizer(system)["input_ids"])
    return pipe


# ----------------------------------------------------------------------------- building


@contextlib.contextmanager
def building_on(device: Any, dtype: Any) -> Iterator[None]:
    """Create tensors directly on ``device`` in ``dtype`` while the block runs.

    Why this and not ``Model(**config).to(device, dtype)``: the latter first allocates every
    weight in float32 on the host (48 GB for FLUX.1's 12B parameters) and then copies it; here
    each weight is allocated once, where and how it will live (24 GB of bf16 on the GPU for
    FLUX.1, nothing on the host), and initialised there. ``low_cpu_mem_usage`` only applies to
    ``from_pretrained`` (it skips initialising weights that a checkpoint will overwrite); with no
    checkpoint the random initialisation is the point. Buffers whose precision matters (SD3's
    sine-cosine position table) are computed by diffusers with explicit float32/float64 dtypes,
    so the default dtype does not degrade them; the caller casts them afterwards.
    """
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def transformer_class(family: str) -> Any:
    from diffusers import (
        ChromaTransformer2DModel,
        Flux2Transformer2DModel,
        FluxTransformer2DModel,
        QwenImageTransformer2DModel,
        SD3Transformer2DModel,
        ZImageTransformer2DModel,
    )

    classes = {"flux": FluxTransformer2DModel, "flux2": Flux2Transformer2DModel,
               "qwen-image": QwenImageTransformer2DModel, "chroma": ChromaTransformer2DModel,
               "z-image": ZImageTransformer2DModel}  # fmt: skip
    return classes.get(family, SD3Transformer2DModel)


def weight_bytes(geo: ModelGeometry, dtype: Any) -> int:
    """Bytes the transformer's parameters and buffers take in ``dtype``, counted on the meta
    device (no memory used), to check that a model fits before building it."""
    import torch

    with torch.device("meta"):
        model = transformer_class(geo.family)(**geo.transformer)
    element = torch.empty((), dtype=dtype).element_size()
    return sum(t.numel() for t in (*model.parameters(), *model.buffers())) * element


def _clip(width: int, tokenizer: Any, projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=64,
        num_hidden_layers=_CLIP_LAYERS,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=width,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _t5(width: int, tokenizer: Any) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=width,
        d_kv=_T5_KV,
        d_ff=_T5_FF,
        num_layers=1,
        num_heads=_T5_HEADS,
        relative_attention_num_buckets=32,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config).eval()


def _cast_float_buffers(module: Any, dtype: Any) -> None:
    """Give buffers computed in float32 during construction (SD3's position table) the model's
    dtype, as ``from_pretrained(torch_dtype=...)`` does; parameters already have it. (Not
    ``module.to(dtype)``: diffusers warns on that, and it would revisit every parameter.)"""
    for submodule in module.modules():
        for key, buffer in submodule._buffers.items():
            if buffer is not None and buffer.is_floating_point() and buffer.dtype != dtype:
                submodule._buffers[key] = buffer.to(dtype)


def build_pipeline(
    geo: ModelGeometry, device: Any, dtype: Any, seed: int = 0, words: Sequence[str] = ()
) -> Any:
    """A diffusers ``FluxPipeline`` or ``StableDiffusion3Pipeline`` of ``geo`` with random weights,
    built directly on ``device`` in ``dtype`` (see :func:`building_on`). ``words``: texts whose
    words the tokenizers should know (the benchmark's prompts)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        StableDiffusion3Pipeline,
    )

    if geo.family == "flux2":
        from scenewright.bench.flux2_build import geometry_pipeline

        return geometry_pipeline(geo, device, dtype, seed, words)
    torch_device = torch.device(device)
    torch.manual_seed(seed)
    if geo.family == "z-image":
        return _z_image_pipeline(geo, torch_device, dtype, words)
    if geo.family in ("qwen-image", "chroma"):
        return _build_t5_or_chat_pipeline(geo, torch_device, dtype, words)
    clip_tokenizers = [word_tokenizer(geo.clip_tokens, words) for _ in geo.clip_widths]
    t5_tokenizer = word_tokenizer(geo.t5_tokens, words)
    with building_on(torch_device, dtype):
        transformer = transformer_class(geo.family)(**geo.transformer).eval()
        vae = AutoencoderKL(**geo.vae).eval()
        t5 = _t5(geo.t5_width, t5_tokenizer)
        clips = [
            _clip(width, tok, projection=geo.family == "sd3")
            for width, tok in zip(geo.clip_widths, clip_tokenizers, strict=True)
        ]
    for module in (transformer, vae, t5, *clips):
        _cast_float_buffers(module, dtype)
    scheduler = FlowMatchEulerDiscreteScheduler(**geo.scheduler)
    if geo.family == "flux":
        pipe = FluxPipeline(
            scheduler=scheduler,
            vae=vae,
            text_encoder=clips[0],
            tokenizer=clip_tokenizers[0],
            text_encoder_2=t5,
            tokenizer_2=t5_tokenizer,
            transformer=transformer,
        )
    else:
        pipe = StableDiffusion3Pipeline(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            text_encoder=clips[0],
            tokenizer=clip_tokenizers[0],
            text_encoder_2=clips[1],
            tokenizer_2=clip_tokenizers[1],
            text_encoder_3=t5,
            tokenizer_3=t5_tokenizer,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ZImagePipeline applies the tokenizer's chat template; Qwen3's wraps the prompt in a user turn.
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> user {{ message['content'] }} <|im_end|>{% endfor %}"
    "{% if add_generation_prompt %} <|im_start|> assistant{% endif %}"
)


def _z_image_pipeline(geo: ModelGeometry, device: Any, dtype: Any, words: Sequence[str]) -> Any:
    """A ``ZImagePipeline`` of ``geo``: a small random Qwen3 with Qwen3-4B's output width."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = word_tokenizer(geo.t5_tokens, [*words, "<|im_start|> <|im_end|> user assistant"])
    tokenizer.chat_template = _CHAT_TEMPLATE
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=geo.t5_width,
        intermediate_size=_T5_FF,
        num_hidden_layers=_CLIP_LAYERS,  # the pipeline reads the penultimate hidden state
        num_attention_heads=_T5_HEADS,
        num_key_value_heads=_T5_HEADS,
        head_dim=_T5_KV,
        max_position_embeddings=max(geo.t5_tokens, 64),
    )
    with building_on(device, dtype):
        transformer = transformer_class(geo.family)(**geo.transformer).eval()
        vae = AutoencoderKL(**geo.vae).eval()
        text_encoder = Qwen3Model(config).eval()
    for module in (transformer, vae, text_encoder):
        _cast_float_buffers(module, dtype)
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**geo.scheduler),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _build_t5_or_chat_pipeline(geo: ModelGeometry, device: Any, dtype: Any, words: Sequence[str]) -> Any:
    """A QwenImagePipeline or ChromaPipeline of ``geo`` with random weights (see :func:`build_pipeline`)."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLQwenImage,
        ChromaPipeline,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
    )

    scheduler = FlowMatchEulerDiscreteScheduler(**geo.scheduler)
    with building_on(device, dtype):
        transformer = transformer_class(geo.family)(**geo.transformer).eval()
        if geo.family == "chroma":
            vae = AutoencoderKL(**geo.vae).eval()
            t5_tokenizer = word_tokenizer(geo.t5_tokens, words)
            t5 = _t5(geo.t5_width, t5_tokenizer)
        else:
            vae = AutoencoderKLQwenImage(
                **{k: list(v) if isinstance(v, tuple) else v for k, v in geo.vae.items()}
            )
            vae = vae.eval()
    if geo.family == "chroma":
        for module in (transformer, vae, t5):
            _cast_float_buffers(module, dtype)
        pipe = ChromaPipeline(
            scheduler=scheduler, vae=vae, text_encoder=t5, tokenizer=t5_tokenizer, transformer=transformer
        )
    else:
        pipe = QwenImagePipeline(
            scheduler=scheduler, vae=vae, text_encoder=None, tokenizer=None, transformer=transformer
        )
        with building_on(device, dtype):
            with_chat_text(pipe, words, geo.t5_width)
        for module in (transformer, vae, pipe.text_encoder):
            _cast_float_buffers(module, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_backend(
    geo: ModelGeometry, device: Any, dtype: Any, seed: int = 0, words: Sequence[str] = ()
) -> Any:
    """Our backend (:class:`FluxBackend` or :class:`SD3Backend`) around :func:`build_pipeline`'s
    pipeline, with the geometry's T5 sequence length."""
    pipe = build_pipeline(geo, device, dtype, seed, words)
    if geo.family == "flux2":
        from scenewright.backends.flux2 import Flux2Backend
        from scenewright.bench.flux2_build import GEOMETRY_TEXT_LAYERS

        return Flux2Backend(
            pipe, name=geo.name, max_sequence_length=geo.t5_tokens, text_layers=GEOMETRY_TEXT_LAYERS
        )
    if geo.family == "z-image":
        from scenewright.backends.z_image import ZImageBackend

        return ZImageBackend(pipe, name=geo.name, max_sequence_length=geo.t5_tokens)
    if geo.family == "qwen-image":
        from scenewright.backends.qwen_image import QwenImageBackend

        return QwenImageBackend(pipe, name=geo.name, max_sequence_length=geo.t5_tokens)
    if geo.family == "chroma":
        from scenewright.backends.chroma import ChromaBackend

        return ChromaBackend(pipe, name=geo.name, max_sequence_length=geo.t5_tokens)
    if geo.family == "flux":
        from scenewright.backends.flux import FluxBackend

        return FluxBackend(pipe, name=geo.name, max_sequence_length=geo.t5_tokens)
    from scenewright.backends.sd3 import SD3Backend

    return SD3Backend(pipe, name=geo.name, max_sequence_length=geo.t5_tokens)
