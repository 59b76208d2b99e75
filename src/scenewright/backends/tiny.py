"""The embedded default: a small FluxTransformer2DModel over pixel-unshuffled 64x64 images.

No VAE: an image's ``patch x patch`` pixel blocks are its tokens (pixel unshuffle), so decoding is
exact and cheap. The text encoder is a small ``CLIPTextModel`` (sequence and pooled output) over a
word-level tokenizer of the toy world's vocabulary. Saved and loaded in diffusers' folder layout.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from diffusers.utils.torch_utils import randn_tensor
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.flux import flux_blocks, flux_forward, flux_set_timesteps, word_spans
from scenewright.backends.specs import EMBEDDED_MODEL_DIR, tiny_sizes
from scenewright.errors import BackendError
from scenewright.toyworld import vocab
from scenewright.toyworld.model_config import CODEC_FILE, TinyConfig, read_codec

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)
# Strategy options tuned on this model by the toy-world bench (optional; see Backend.strategy_defaults).
STRATEGY_DEFAULTS_FILE = "strategy_defaults.json"
# The measured ranking ``auto`` picks from (optional; see Backend.auto_table).
AUTO_TABLE_FILE = "auto_table.json"


def velocity_from_output(
    config: TinyConfig, output: torch.Tensor, latents: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The flow velocity ``noise - x0`` the sampler steps with, whatever the model predicts.

    ``t`` is the noise level in [0, 1], a scalar or one per batch row. With
    ``x_t = (1 - t) x0 + t noise``, a predicted ``x0`` gives ``v = (x_t - x0) / t``.
    """
    if config.prediction == "velocity":
        return output
    t = t.to(latents.dtype).reshape(-1, *([1] * (latents.ndim - 1))).clamp(min=config.min_t)
    return (latents - output) / t


def build_tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the toy vocabulary; unknown words become ``[UNK]``."""
    words = vocab.vocabulary()
    model = WordLevel({w: i for i, w in enumerate(words)}, unk_token=vocab.UNK)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    bos, eos = words.index(vocab.BOS), words.index(vocab.EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{vocab.BOS} $A {vocab.EOS}", special_tokens=[(vocab.BOS, bos), (vocab.EOS, eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=vocab.UNK,
        pad_token=vocab.PAD,
        bos_token=vocab.BOS,
        eos_token=vocab.EOS,
        model_max_length=max_length,
    )


def build_components(
    config: TinyConfig, seed: int = 0
) -> tuple[FluxTransformer2DModel, CLIPTextModel, PreTrainedTokenizerFast, FlowMatchEulerDiscreteScheduler]:
    """Fresh, randomly initialised components (deterministic for ``seed``)."""
    tokenizer = build_tokenizer(config.max_text_tokens)
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.text_width,
        intermediate_size=config.text_width * 4,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=config.max_text_tokens,
        projection_dim=config.text_width,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    text_encoder = CLIPTextModel(text_config)
    rope_rest = (config.head_dim - config.head_dim // 4) // 2
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=config.channels,
        num_layers=config.double_blocks,
        num_single_layers=config.single_blocks,
        attention_head_dim=config.head_dim,
        num_attention_heads=config.heads,
        joint_attention_dim=config.text_width,
        pooled_projection_dim=config.text_width,
        guidance_embeds=False,
        axes_dims_rope=(config.head_dim - 2 * rope_rest, rope_rest, rope_rest),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    return transformer, text_encoder, tokenizer, scheduler


def read_auto_table(root: Path) -> dict[str, Any]:
    """The ``auto`` table in a model folder, or {} when it has none."""
    path = root / AUTO_TABLE_FILE
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BackendError(f"backend: {path} is not valid JSON ({error})") from error
    if not isinstance(table, dict) or not isinstance(table.get("kinds"), dict):
        raise BackendError(
            f"backend: {path} has no 'kinds' mapping; rebuild it with scenewright bench auto-table"
        )
    return table


def _place(module: ModuleT, device: torch.device, dtype: torch.dtype) -> ModuleT:
    """Move to ``device``; cast only when the dtype differs (diffusers warns on needless casts)."""
    module = module.to(device)
    if next(module.parameters()).dtype != dtype:
        module = module.to(dtype)
    return module.eval()


class TinyBackend(Backend):
    """The toy-world model: FLUX code paths at a size that samples in about a second on a CPU."""

    family = "flux"
    token_order = TokenOrder.TEXT_FIRST
    guidance_mode = GuidanceMode.CFG
    knows_layout_words = False  # its captions name counts and attributes, never positions

    def __init__(
        self,
        transformer: FluxTransformer2DModel,
        text_encoder: CLIPTextModel,
        tokenizer: PreTrainedTokenizerFast,
        scheduler: FlowMatchEulerDiscreteScheduler,
        config: TinyConfig,
        name: str = "tiny",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        trained: bool = True,
        strategy_defaults: Mapping[str, Mapping[str, Any]] | None = None,
        auto_table: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.strategy_defaults = dict(strategy_defaults or {})
        self.auto_table = dict(auto_table or {})
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        self.transformer = _place(transformer, self.device, dtype)
        self.text_encoder = _place(text_encoder, self.device, dtype)
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.trained = trained
        self.model_dir: Path | None = None
        self.size_multiple, self.min_size, self.max_size = tiny_sizes(config.patch, config.image_size)
        self.defaults = SamplingDefaults(
            steps=config.default_steps,
            guidance=config.default_guidance,
            height=config.image_size,
            width=config.image_size,
            guidance_max_sigma=config.default_guidance_max_sigma,
            background_prompt=config.default_background_prompt,
        )

    # ------------------------------------------------------------------ loading
    @classmethod
    def random(cls, config: TinyConfig | None = None, seed: int = 0, **kwargs: Any) -> TinyBackend:
        """An untrained model from config (tests, and the default until weights are shipped)."""
        config = config or TinyConfig()
        return cls(*build_components(config, seed), config=config, trained=False, **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> TinyBackend:
        """Load a folder written by :meth:`save_pretrained`."""
        root = Path(path)
        if not (root / CODEC_FILE).is_file():
            raise BackendError(f"backend: {root} is not a tiny model folder (no {CODEC_FILE})")
        config = TinyConfig(**read_codec(root))
        transformer = FluxTransformer2DModel.from_pretrained(root / "transformer")
        text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder")
        tokenizer = PreTrainedTokenizerFast.from_pretrained(root / "tokenizer")
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(root / "scheduler")
        tuned = root / STRATEGY_DEFAULTS_FILE
        if tuned.is_file() and "strategy_defaults" not in kwargs:
            try:
                kwargs["strategy_defaults"] = json.loads(tuned.read_text())
            except json.JSONDecodeError as error:
                raise BackendError(f"backend: {tuned} is not valid JSON ({error})") from error
        if "auto_table" not in kwargs:
            kwargs["auto_table"] = read_auto_table(root)
        backend = cls(transformer, text_encoder, tokenizer, scheduler, config, **kwargs)
        backend.model_dir = root  # where the LoRAs shipped with it are (backends.lora)
        return backend

    @classmethod
    def embedded(cls, **kwargs: Any) -> TinyBackend:
        """The model shipped in the package, or an untrained one (with a warning) if none is."""
        if (EMBEDDED_MODEL_DIR / CODEC_FILE).is_file():
            return cls.from_pretrained(EMBEDDED_MODEL_DIR, **kwargs)
        warnings.warn(
            "no trained embedded model is shipped in this build; using an untrained tiny model",
            stacklevel=2,
        )
        return cls.random(**kwargs)

    def save_pretrained(self, path: str | Path) -> None:
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.transformer.save_pretrained(root / "transformer")
        self.text_encoder.save_pretrained(root / "text_encoder")
        self.tokenizer.save_pretrained(root / "tokenizer")
        self.scheduler.save_pretrained(root / "scheduler")
        (root / CODEC_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        if self.auto_table:
            (root / AUTO_TABLE_FILE).write_text(json.dumps(self.auto_table, indent=2) + "\n")
        if self.strategy_defaults:
            (root / STRATEGY_DEFAULTS_FILE).write_text(json.dumps(self.strategy_defaults, indent=2) + "\n")

    # ------------------------------------------------------------------ text
    def unknown_words(self, prompt: str) -> list[str]:
        """Words of ``prompt`` the model has no token for (they become ``[UNK]``)."""
        known = self.tokenizer.get_vocab()
        pieces = self.tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(prompt.lower())
        return [w for w, _ in pieces if w.isalnum() and w not in known]

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        inputs = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.config.max_text_tokens,
            truncation=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            out = self.text_encoder(inputs.input_ids.to(self.device))
        words = [word_spans(self.tokenizer, p, self.config.max_text_tokens) for p in prompts]
        return PromptEncoding(prompts, out.last_hidden_state, out.pooler_output, words)

    # ------------------------------------------------------------------ latents
    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.config.patch, width // self.config.patch

    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        shape = (batch_size, rows * cols, self.config.channels)
        return randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return tokens

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        grid = latents.transpose(1, 2).reshape(latents.shape[0], self.config.channels, rows, cols)
        return F.pixel_shuffle(grid, self.config.patch)  # the image itself, in [-1, 1]

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return F.pixel_unshuffle(spatial, self.config.patch).flatten(2).transpose(1, 2)

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return (self.spatial_latents(latents.float(), height, width) / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        grid = F.pixel_unshuffle(images.to(self.device, self.dtype) * 2 - 1, self.config.patch)
        return grid.flatten(2).transpose(1, 2)

    # ------------------------------------------------------------------ denoising
    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        return flux_set_timesteps(scheduler, steps, rows * cols, self.device)

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        encoding: PromptEncoding,
        *,
        height: int,
        width: int,
        guidance: float | None = None,
        attention_kwargs: Mapping[str, Any] | None = None,
    ) -> torch.Tensor:
        grid = self.token_grid(height, width)
        output = flux_forward(self.transformer, latents, timestep, encoding, grid, None, attention_kwargs)
        return velocity_from_output(self.config, output, latents, timestep / 1000)

    def blocks(self) -> list[BlockRef]:
        return flux_blocks(self.transformer)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "trained": self.trained}
