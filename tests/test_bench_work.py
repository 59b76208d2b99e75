"""The transformer's work, counted (``scenewright.bench.work``): the meter counts each call's
batch and tokens, and the work model agrees with torch's own FLOP counter on the published
geometries."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from scenewright.bench.geometry import geometry, transformer_class
from scenewright.bench.work import TransformerWork, published_flops, work_meter


def _flux_inputs(batch: int, image: int, text: int, width: int = 64, pooled: int = 768) -> dict[str, Any]:
    return {
        "hidden_states": torch.randn(batch, image, width),
        "encoder_hidden_states": torch.randn(batch, text, 4096),
        "pooled_projections": torch.randn(batch, pooled),
        "timestep": torch.ones(batch),
        "img_ids": torch.zeros(image, 3),
        "txt_ids": torch.zeros(text, 3),
        "guidance": torch.ones(batch),
        "return_dict": False,
    }


def _sd3_inputs(batch: int, side: int, text: int) -> dict[str, Any]:
    return {
        "hidden_states": torch.randn(batch, 16, side, side),
        "encoder_hidden_states": torch.randn(batch, text, 4096),
        "pooled_projections": torch.randn(batch, 2048),
        "timestep": torch.ones(batch),
        "return_dict": False,
    }


@pytest.mark.parametrize(
    ("name", "batch", "image", "text"), [("flux-dev", 1, 1024, 77), ("sd3.5-medium", 2, 1024, 333)]
)
def test_the_work_model_matches_torchs_flop_counter_on_the_published_transformer(
    name: str, batch: int, image: int, text: int
) -> None:
    """One call of the published transformer, built on the meta device (no memory, no compute):
    torch counts every matrix product and attention; ours is within 1% of it."""
    geo = geometry(name, "full")
    with torch.device("meta"):
        model = transformer_class(geo.family)(**geo.transformer).eval()
        side = int(image**0.5) * 2  # SD3 patchifies 2x2 latent cells into a token
        inputs = _flux_inputs(batch, image, text) if geo.family == "flux" else _sd3_inputs(batch, side, text)
        with FlopCounterMode(display=False) as counter, work_meter(model) as work:
            model(**inputs)
    assert (work.calls, work.token_rows) == (1, batch * (image + text))
    assert work.image_rows == batch * image
    assert published_flops(geo, work) == pytest.approx(counter.get_total_flops(), rel=0.01)


def test_the_meter_counts_each_calls_batch_and_tokens_and_then_lets_go() -> None:
    flux = geometry("flux-dev", "narrow")
    sd3 = geometry("sd3.5-medium", "narrow")
    with torch.device("meta"):
        flux_model = transformer_class("flux")(**flux.transformer).eval()
        sd3_model = transformer_class("sd3")(**sd3.transformer).eval()
        with work_meter(flux_model) as flux_work:
            flux_model(**_flux_inputs(2, 16, 8))
            flux_model(**_flux_inputs(1, 64, 8))
        flux_model(**_flux_inputs(1, 64, 8))  # after the block: not counted
        with work_meter(sd3_model) as sd3_work:
            sd3_model(**_sd3_inputs(2, 8, 5))  # 8x8 latent cells, 2x2 a token: 16 image tokens
    assert flux_work == TransformerWork(
        calls=2,
        token_rows=2 * 24 + 72,
        attention_pairs=2 * 24**2 + 72**2,
        image_rows=2 * 16 + 64,
        image_pairs=2 * 16**2 + 64**2,
        dense_attention_pairs=2 * 24**2 + 72**2,  # no engine ran: every block is counted dense
        dense_image_pairs=2 * 16**2 + 64**2,
    )
    assert (sd3_work.calls, sd3_work.token_rows, sd3_work.image_rows) == (1, 2 * 21, 2 * 16)


def test_work_grows_with_tokens_as_the_published_widths_say() -> None:
    """Doubling the calls doubles the work; the work is the published model's at any scale."""
    one, two = TransformerWork(), TransformerWork()
    one.add(1, 4096, 512)
    two.add(1, 4096, 512)
    two.add(1, 4096, 512)
    assert published_flops(geometry("flux-dev", "narrow"), two) == pytest.approx(
        2 * published_flops(geometry("flux-dev", "full"), one)
    )
    # FLUX.1 at 1024 px: about 74 TFLOP a call (12B parameters, 4,608 tokens, and the attention).
    assert 70e12 < published_flops(geometry("flux-dev", "small"), one) < 78e12


def test_narrow_geometry_keeps_the_real_sequences_and_few_narrow_blocks() -> None:
    for name in ("flux-dev", "flux-schnell", "sd3.5-medium", "sd3.5-large"):
        full, narrow = geometry(name, "full"), geometry(name, "narrow")
        assert narrow.t5_tokens == full.t5_tokens and narrow.clip_tokens == full.clip_tokens
        assert (narrow.heads, narrow.head_dim) == (2, 8)
        assert sum(narrow.blocks.values()) < sum(full.blocks.values())
        assert narrow.transformer["in_channels"] == full.transformer["in_channels"]
        assert narrow.vae["latent_channels"] == 16
    assert geometry("sd3.5-medium", "narrow").max_tokens_per_side == 128  # 2048-pixel images fit
