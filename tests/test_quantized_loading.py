"""--quantize: diffusers' quantized loading through our loader, refused in one line where the
quantization backend cannot run, and run for real on a CPU with torchao's int8 weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from family_builders import tiny_chroma_pipeline
from scenewright.backends.quantize import check_quantize
from scenewright.backends.registry import load_backend, resolve_backend
from scenewright.errors import InvalidInputError
from scenewright.executor.sampler import SamplingSettings, sample

HAS_TORCHAO = importlib.util.find_spec("torchao") is not None


@pytest.mark.parametrize(
    ("mode", "family", "words"),
    [
        ("bnb-4bit", "flux", "bitsandbytes runs on CUDA only"),
        ("bnb-8bit", "qwen-image", "bitsandbytes runs on CUDA only"),
        ("int3", "sd3", "unknown mode 'int3'"),
        ("torchao-int8", "tiny", "small and loads as it is"),
    ],
)
def test_a_quantization_that_cannot_run_here_is_one_line(mode: str, family: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as caught:
        check_quantize(mode, family, torch.device("cpu"))
    assert "\n" not in str(caught.value) and "quantize" in str(caught.value)


def test_missing_torchao_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scenewright.backends.quantize._installed", lambda module: False)
    with pytest.raises(InvalidInputError, match=r"scenewright\[torchao\]"):
        check_quantize("torchao-int8", "chroma", torch.device("cpu"))


def test_refused_before_any_weights_load(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text('{"_class_name": "QwenImagePipeline"}')
    spec = resolve_backend(str(tmp_path))  # a folder with no weights: loading them would fail otherwise
    assert spec.family == "qwen-image"
    with pytest.raises(InvalidInputError, match="CUDA only"):
        load_backend(spec, device="cpu", quantize="bnb-4bit")


@pytest.mark.skipif(not HAS_TORCHAO, reason="torchao is not installed (pip install 'scenewright[torchao]')")
def test_the_transformer_and_the_large_text_encoder_are_quantized() -> None:
    from scenewright.backends.quantize import quantization_config

    for family, encoder in (
        ("flux", "text_encoder_2"),
        ("sd3", "text_encoder_3"),
        ("qwen-image", "text_encoder"),
    ):
        config = quantization_config("torchao-int8", family, torch.bfloat16)
        assert set(config.quant_mapping) == {"transformer", encoder}
        assert type(config.quant_mapping["transformer"].quant_type).__name__ == "Int8WeightOnlyConfig"
    assert quantization_config(None, "flux", torch.float32) is None


@pytest.mark.slow  # importing torchao and loading twice: ~30 s on two busy cores
@pytest.mark.skipif(not HAS_TORCHAO, reason="torchao is not installed (pip install 'scenewright[torchao]')")
def test_torchao_int8_weights_load_and_sample_on_a_cpu(tmp_path: Path) -> None:
    folder = tmp_path / "chroma"
    tiny_chroma_pipeline().save_pretrained(folder)
    spec = resolve_backend(str(folder))
    assert spec.family == "chroma"
    plain = load_backend(spec, device="cpu", dtype="float32")
    quantized = load_backend(spec, device="cpu", dtype="float32", quantize="torchao-int8")
    weight = quantized.transformer.transformer_blocks[0].attn.to_q.weight
    assert "Int8" in type(weight).__name__
    assert (
        "Int8" in type(quantized.pipe.text_encoder.encoder.block[0].layer[0].SelfAttention.q.weight).__name__
    )
    assert type(quantized.pipe.vae.decoder.conv_in.weight).__name__ == "Parameter"  # the VAE stays as stored
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=1)
    ours = sample(quantized, quantized.encode_prompts(["a red apple"]), settings, progress=False).images
    reference = sample(plain, plain.encode_prompts(["a red apple"]), settings, progress=False).images
    # int8 weights: close to the float model's image, not equal to it.
    difference = (ours - reference).abs().max().item()
    assert 0 < difference < 0.1
