"""A tiny Z-Image pipeline built from config, offline: Qwen3 captions, single-stream blocks."""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

from builders import WORDS, _vae
from scenewright.bench.geometry import word_level_tokenizer

# Words around the prompt, as Qwen3's chat template puts them: they map to no word of the prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}user : {{ message['content'] }} ;{% endfor %}"
    "{% if add_generation_prompt %} assistant :{% endif %}"
)


def chat_tokenizer(max_length: int = 64) -> PreTrainedTokenizerFast:
    """The tests' word-level tokenizer with a chat template (ZImagePipeline applies one)."""
    tokenizer: PreTrainedTokenizerFast = word_level_tokenizer([*WORDS, "user", "assistant"], max_length)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _qwen3(vocab: int, seed: int) -> Qwen3Model:
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    )
    return Qwen3Model(config).eval()


def tiny_z_image_transformer(seed: int = 0, layers: int = 2, refiners: int = 1) -> ZImageTransformer2DModel:
    """dim 32, 2 heads of 16 (RoPE axes 8 + 4 + 4), a 16-wide caption."""
    torch.manual_seed(seed)
    model = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=layers,
        n_refiner_layers=refiners,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=16,
        axes_dims=[8, 4, 4],
        axes_lens=[512, 32, 32],
    )
    # Trained pad tokens are not zero: random ones make the padding tests mean something.
    with torch.no_grad():
        model.x_pad_token.normal_()
        model.cap_pad_token.normal_()
    return model.eval()


def tiny_z_image_pipeline(seed: int = 0, layers: int = 2) -> ZImagePipeline:
    """A 2x VAE and patch 2: a 32 px image is 8x8 = 64 image tokens."""
    tokenizer = chat_tokenizer()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False)
    return ZImagePipeline(
        scheduler=scheduler,
        vae=_vae(16, seed),
        text_encoder=_qwen3(len(tokenizer), seed),
        tokenizer=tokenizer,
        transformer=tiny_z_image_transformer(seed, layers),
    )
