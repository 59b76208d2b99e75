"""FLUX.2 pipelines built offline from config with random weights (benchmarks and tests).

The real text encoders (Mistral Small 3.1, 24B, for dev; Qwen3 4B or 8B for klein) are replaced
by one- or two-layer random models of the same class whose hidden width is the published one
divided by the three layers the pipeline stacks, so the transformer sees the published text
width (dev 15360, klein 4B 7680, klein 9B 12288); the backend is told which of their layers to
stack. The tokenizer is the word-level one of :mod:`.geometry` with a small chat template, so the
pipelines' own ``apply_chat_template`` calls run unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# A chat template of the shape the pipelines feed: dev passes typed content lists with a system
# message, klein a plain user string and ``add_generation_prompt``.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['content'] is string %}{{ m['role'] }} : {{ m['content'] }} . "
    "{% else %}{% for c in m['content'] %}{{ m['role'] }} : {{ c['text'] }} . {% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
)


def chat_tokenizer(words: Sequence[str], max_length: int) -> Any:
    """A word-level fast tokenizer over ``words`` (plus the template's) with :data:`CHAT_TEMPLATE`."""
    from scenewright.bench.geometry import word_level_tokenizer

    extra = [w for w in ("system", "user", "assistant", ":", ".") if w not in words]
    tokenizer = word_level_tokenizer([*words, *extra], max_length)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def mistral3_encoder(vocab: int, hidden: int, layers: int, pad_id: int, heads: int = 4, head_dim: int = 8,
                     intermediate: int = 37) -> Any:  # fmt: skip
    """A random ``Mistral3ForConditionalGeneration`` (FLUX.2 dev's class) with a tiny vision tower."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "max_position_embeddings": 1024,
            "num_attention_heads": heads,
            "head_dim": head_dim,
            "num_hidden_layers": layers,
            "num_key_value_heads": max(1, heads // 2),
            "rms_norm_eps": 1e-5,
            "sliding_window": None,
            "pad_token_id": pad_id,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 37,
            "image_size": 30,
            "patch_size": 6,
            "num_channels": 3,
        },
        image_token_index=1,
        vision_feature_layer=-1,
        pad_token_id=pad_id,
    )
    return Mistral3ForConditionalGeneration(config).eval()


def qwen3_encoder(vocab: int, hidden: int, layers: int, pad_id: int, heads: int = 4, head_dim: int = 8,
                  intermediate: int = 37) -> Any:  # fmt: skip
    """A random ``Qwen3ForCausalLM`` (FLUX.2 klein's class)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=head_dim,
        max_position_embeddings=1024,
        pad_token_id=pad_id,
    )
    return Qwen3ForCausalLM(config).eval()


def flux2_vae(config: Mapping[str, Any], bn_seed: int | None = None) -> Any:
    """An ``AutoencoderKLFlux2``; ``bn_seed`` gives its batch norm random statistics (a fresh one
    has mean 0 and variance 1, which would hide a missing normalisation)."""
    import torch
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(**config).eval()
    if bn_seed is not None:
        generator = torch.Generator().manual_seed(bn_seed)
        channels = vae.bn.running_mean.shape[0]
        vae.bn.running_mean.copy_(torch.randn(channels, generator=generator) * 0.3)
        vae.bn.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
    return vae


def flux2_pipeline(
    transformer: Any,
    vae: Any,
    scheduler: Any,
    *,
    klein: bool,
    distilled: bool,
    words: Sequence[str],
    max_length: int,
    text_width: int,
    text_layers: int,
    encoder_kwargs: Mapping[str, Any] | None = None,
    system_message: str | None = None,
) -> Any:
    """A ``Flux2Pipeline`` (Mistral3) or ``Flux2KleinPipeline`` (Qwen3) around the given parts, with
    a random text encoder of hidden width ``text_width`` and ``text_layers`` layers."""
    from diffusers import Flux2KleinPipeline, Flux2Pipeline

    tokenizer = chat_tokenizer(words, max_length)
    build = qwen3_encoder if klein else mistral3_encoder
    encoder = build(len(tokenizer), text_width, text_layers, tokenizer.pad_token_id, **(encoder_kwargs or {}))
    if klein:
        pipe = Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer,
                                  transformer=transformer, is_distilled=distilled)  # fmt: skip
    else:
        pipe = Flux2Pipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer,
                             transformer=transformer)  # fmt: skip
        if system_message is not None:
            pipe.system_message = system_message
    pipe.set_progress_bar_config(disable=True)
    return pipe


# The random encoder's layer the backend stacks three times (the real pipelines stack three of 30+).
GEOMETRY_TEXT_LAYERS = (1, 1, 1)


def geometry_pipeline(geo: Any, device: Any, dtype: Any, seed: int = 0, words: Sequence[str] = ()) -> Any:
    """The FLUX.2 pipeline of a :class:`~scenewright.bench.geometry.ModelGeometry` (family "flux2"),
    random weights built on ``device`` in ``dtype``; its encoder's width is the published one / 3."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from scenewright.bench.geometry import (
        _BASE_WORDS,
        _WORD,
        _cast_float_buffers,
        building_on,
        transformer_class,
    )

    vocabulary: list[str] = []
    for word in [*_BASE_WORDS.split(), *(w for text in words for w in _WORD.findall(text.lower()))]:
        if word not in vocabulary:
            vocabulary.append(word)
    torch.manual_seed(seed)
    klein = not geo.transformer.get("guidance_embeds", True)
    with building_on(torch.device(device), dtype):
        transformer = transformer_class(geo.family)(**geo.transformer).eval()
        vae = flux2_vae(geo.vae)
        pipe = flux2_pipeline(
            transformer,
            vae,
            FlowMatchEulerDiscreteScheduler(**geo.scheduler),
            klein=klein,
            distilled=klein,
            words=vocabulary,
            max_length=geo.t5_tokens,
            text_width=geo.t5_width // len(GEOMETRY_TEXT_LAYERS),
            text_layers=1,
            encoder_kwargs={"heads": 4, "head_dim": 32, "intermediate": 64},
        )
    for module in (transformer, vae, pipe.text_encoder):
        _cast_float_buffers(module, dtype)
    return pipe
