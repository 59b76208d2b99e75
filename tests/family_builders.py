"""Tiny Chroma and Qwen-Image pipelines built from config, offline: no hub download anywhere."""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    ChromaPipeline,
    ChromaTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from builders import WORDS, _t5, _vae, word_tokenizer


def _scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        base_shift=0.5,
        max_shift=1.15,
    )


def tiny_chroma_pipeline(seed: int = 0, double_blocks: int = 2, single_blocks: int = 2) -> ChromaPipeline:
    """A Chroma pipeline for CPU tests: FLUX.1-style blocks, one small T5, the 2x2 test VAE."""
    torch.manual_seed(seed)
    transformer = ChromaTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=double_blocks,
        num_single_layers=single_blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(4, 6, 6),
        approximator_num_channels=8,
        approximator_hidden_dim=32,
        approximator_layers=1,
    ).eval()
    return ChromaPipeline(
        scheduler=_scheduler(),
        vae=_vae(4, seed + 1),
        text_encoder=_t5(32, seed + 3),
        tokenizer=word_tokenizer(512),
        transformer=transformer,
    )


_IM_START, _IM_END, _PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"


def qwen_tokenizer(template: str) -> PreTrainedTokenizerFast:
    """A word-level stand-in for Qwen2's tokenizer: its chat tokens as special tokens, the template's
    and the tests' words in the vocabulary, no tokens added around a text (as Qwen2's)."""
    words: list[str] = []
    splitter = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    for text in (template.replace("{}", " "), " ".join(WORDS)):
        for piece, _ in splitter.pre_tokenize_str(text.lower().replace(_IM_START, " ").replace(_IM_END, " ")):
            if piece not in words:
                words.append(piece)
    vocab = {w: i for i, w in enumerate([_PAD, "<unk>", _IM_START, _IM_END, *words])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token=_PAD,
        additional_special_tokens=[_IM_START, _IM_END],
        model_max_length=2048,
    )


def _qwen_vl(vocab_size: int, seed: int) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            "vocab_size": vocab_size,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        hidden_size=16,
        vocab_size=vocab_size,
        bos_token_id=0,
        eos_token_id=0,
        vision_start_token_id=vocab_size - 3,
        vision_end_token_id=vocab_size - 2,
        vision_token_id=vocab_size - 1,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def tiny_qwen_image_pipeline(seed: int = 0, blocks: int = 2) -> QwenImagePipeline:
    """A Qwen-Image pipeline for CPU tests: 2 dual-stream blocks of 2 heads of 16, a 2-layer
    Qwen2.5-VL, a 4x video VAE (so 8 px a token). The template's system part is dropped at the
    count this tokenizer gives it, as the real pipeline drops the real tokenizer's 34."""
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLQwenImage(
        base_dim=24,
        z_dim=4,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    ).eval()
    pipe = QwenImagePipeline(
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=None,  # type: ignore[arg-type]
        tokenizer=None,  # type: ignore[arg-type]
        transformer=transformer,
    )
    tokenizer = qwen_tokenizer(pipe.prompt_template_encode)
    pipe.tokenizer = tokenizer
    pipe.text_encoder = _qwen_vl(len(tokenizer) + 3, seed + 2)
    system = pipe.prompt_template_encode.split("{}")[0]
    pipe.prompt_template_encode_start_idx = len(tokenizer(system)["input_ids"])
    return pipe
