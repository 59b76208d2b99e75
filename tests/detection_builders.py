"""Tiny OWLv2, Grounding DINO, Mask2Former and CLIP models built from config: random weights,
no download, a few seconds each on a CPU."""

from __future__ import annotations

from typing import Any

import torch

from scenewright.bench.geometry import word_level_tokenizer

WORDS = ["a", "photo", "of", "cat", "dog", "apple", "red", "blue", "green", "colored", "object", "computer",
         "mouse", "tv", ".", "-", *["orange", "yellow", "purple", "pink", "brown", "black", "white"]]  # fmt: skip


def tokenizer(max_length: int = 16) -> Any:
    return word_level_tokenizer(WORDS, max_length)


def _text_and_vision(tok: Any) -> dict[str, Any]:
    """The tiny text and vision towers OWLv2 and CLIP share (CLIP-style, 16 wide, one layer)."""
    layer = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    special = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    return {
        "text_config": {"vocab_size": len(tok), "max_position_embeddings": 16, **layer, **special},
        "vision_config": {"image_size": 32, "patch_size": 8, **layer},
        "projection_dim": 16,
    }


def owlv2() -> tuple[Any, Any, Any]:
    from transformers import Owlv2Config, Owlv2ForObjectDetection
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    tok = tokenizer(16)
    config = Owlv2Config(**_text_and_vision(tok))
    torch.manual_seed(0)
    return (
        Owlv2ForObjectDetection(config).eval(),
        Owlv2ImageProcessorPil(size={"height": 32, "width": 32}),
        tok,
    )


def grounding_dino() -> tuple[Any, Any, Any]:
    from transformers import BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    tok = tokenizer(32)
    backbone = SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 1],
                          window_size=2, out_features=["stage1", "stage2"])  # fmt: skip
    text = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
        num_queries=10, num_feature_levels=2, encoder_n_points=2, decoder_n_points=2, max_text_len=32,
        use_timm_backbone=False, use_pretrained_backbone=False,
    )  # fmt: skip
    torch.manual_seed(0)
    processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 32, "longest_edge": 64})
    return GroundingDinoForObjectDetection(config).eval(), processor, tok


def mask2former(labels: tuple[str, ...] = ("cat", "mouse", "tv")) -> tuple[Any, Any]:
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig
    from transformers.models.mask2former.image_processing_pil_mask2former import Mask2FormerImageProcessorPil

    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          window_size=2, out_features=["stage1", "stage2", "stage3", "stage4"])  # fmt: skip
    config = Mask2FormerConfig(
        backbone_config=backbone, num_labels=len(labels), hidden_dim=32, mask_feature_size=32, feature_size=32,
        encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2, num_attention_heads=2,
        num_queries=5, common_stride=4, id2label=dict(enumerate(labels)),
        label2id={name: k for k, name in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    return model, Mask2FormerImageProcessorPil(size={"height": 64, "width": 64})


def clip() -> tuple[Any, Any]:
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = tokenizer(16)
    config = CLIPConfig(**_text_and_vision(tok))
    torch.manual_seed(0)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return CLIPModel(config).eval(), CLIPProcessor(image_processor=image_processor, tokenizer=tok)
