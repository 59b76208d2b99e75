"""``scenewright bench models``: the published geometries, kept wide at small scale, and the
command's report (every case timed against the diffusers pipeline, memory against vanilla)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from scenewright.bench import models as bench_models
from scenewright.bench.geometry import MODEL_NAMES, geometry, transformer_class
from scenewright.cli import main as cli_main
from scenewright.errors import InvalidInputError

# The command's smallest run that still has every real width: one FLUX-class and one SD3-class
# model, 32x32 pixels (2x2 image tokens), one step, 8 T5 tokens. About a minute on two cores.
FLUX_MODEL, SD3_MODEL = "flux-dev", "sd3.5-medium"
STRATEGIES = ["vanilla", "regional", "stitch"]
BROKEN = "taca"  # made to fail in the run below: the run must record it and go on
RUN_ARGS = ["--scale", "small", "--models", f"{FLUX_MODEL},{SD3_MODEL}", "--size", "32", "--steps", "1",
            "--t5-tokens", "8", "--seed", "3"]  # fmt: skip


def _meta_transformer(name: str, scale: str) -> Any:
    geo = geometry(name, scale)
    with torch.device("meta"):
        return transformer_class(geo.family)(**geo.transformer)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_small_geometry_keeps_every_width_and_head_count(name: str) -> None:
    full, small = geometry(name, "full"), geometry(name, "small")
    assert (small.hidden_size, small.heads, small.head_dim) == (full.hidden_size, full.heads, full.head_dim)
    for key in ("joint_attention_dim", "pooled_projection_dim", "caption_projection_dim", "in_channels"):
        assert small.transformer.get(key) == full.transformer.get(key)
    if full.family == "qwen-image":  # its video VAE: z_dim latent channels, 3 downsamplings
        assert small.vae["z_dim"] == full.vae["z_dim"] == 16 and len(small.vae["dim_mult"]) == 4
        assert small.t5_width == full.t5_width == 3584  # Qwen2.5-VL-7B's hidden size
    else:
        if full.family == "flux2":  # three stacked encoder layers
            published_latents, published_text = 32, full.transformer["joint_attention_dim"]
        else:  # Qwen3-4B's width, or T5-XXL's
            published_latents, published_text = 16, (2560 if full.family == "z-image" else 4096)
        assert small.vae["latent_channels"] == full.vae["latent_channels"] == published_latents
        assert len(small.vae["block_out_channels"]) == len(full.vae["block_out_channels"]) == 4  # 8x stride
        assert small.t5_width == full.t5_width == published_text
    assert small.clip_widths == full.clip_widths
    assert sum(small.blocks.values()) < sum(full.blocks.values())


def test_small_transformers_have_the_published_widths() -> None:
    flux = _meta_transformer("flux-dev", "small")
    assert geometry("flux-dev", "small").hidden_size == 3072
    assert flux.transformer_blocks[0].attn.to_q.weight.shape == (3072, 3072)
    assert flux.transformer_blocks[0].attn.heads == 24
    assert (len(flux.transformer_blocks), len(flux.single_transformer_blocks)) == (1, 1)
    assert flux.context_embedder.in_features == 4096
    medium = _meta_transformer("sd3.5-medium", "small")
    assert geometry("sd3.5-medium", "small").hidden_size == 1536
    assert medium.transformer_blocks[0].attn.to_q.weight.shape == (1536, 1536)
    assert medium.transformer_blocks[0].attn.heads == 24
    # One MMDiT-X block with its second (image-only) attention, one plain joint block.
    assert medium.transformer_blocks[0].attn2 is not None and medium.transformer_blocks[1].attn2 is None
    assert medium.context_embedder.in_features == 4096
    large = _meta_transformer("sd3.5-large", "small")
    assert large.transformer_blocks[0].attn.to_q.weight.shape == (2432, 2432)
    assert large.transformer_blocks[0].attn.heads == 38


def test_full_geometries_have_the_published_sizes() -> None:
    def billions(name: str) -> float:
        return sum(p.numel() for p in _meta_transformer(name, "full").parameters()) / 1e9

    assert 11.8 < billions("flux-dev") < 12.0  # FLUX.1: "12B"
    assert 11.8 < billions("flux-schnell") < 12.0
    assert 2.2 < billions("sd3.5-medium") < 2.6  # "2.5B"
    assert 7.9 < billions("sd3.5-large") < 8.2  # "8.1B"
    assert geometry("flux-dev").blocks == {"double": 19, "single": 38}
    assert geometry("sd3.5-medium").blocks == {"joint": 24, "dual_attention": 13}
    assert geometry("sd3.5-large").blocks == {"joint": 38, "dual_attention": 0}
    assert (geometry("flux-dev").t5_tokens, geometry("flux-schnell").t5_tokens) == (512, 256)
    assert geometry("sd3.5-large").t5_tokens == 256 and geometry("sd3.5-large").clip_widths == (768, 1280)
    assert geometry("flux-dev").vae["scaling_factor"] == 0.3611
    assert geometry("sd3.5-medium").vae["scaling_factor"] == 1.5305


def test_qwen_image_and_chroma_have_their_published_sizes() -> None:
    qwen = sum(p.numel() for p in _meta_transformer("qwen-image", "full").parameters()) / 1e9
    chroma = sum(p.numel() for p in _meta_transformer("chroma", "full").parameters()) / 1e9
    assert 20.2 < qwen < 20.6 and 8.8 < chroma < 9.0  # "20B" and "8.9B"
    assert geometry("qwen-image").blocks == {"double": 60}
    assert geometry("chroma").blocks == {"double": 19, "single": 38}
    assert geometry("qwen-image").hidden_size == geometry("chroma").hidden_size == 3072
    assert geometry("chroma").t5_tokens == 512 and geometry("chroma").clip_widths == ()
    narrow = _meta_transformer("qwen-image", "narrow")
    assert len(narrow.transformer_blocks) == 1 and narrow.transformer_blocks[0].attn.heads == 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the command, through the CLI, with one strategy made to fail."""
    from scenewright.executor import strategies

    def broken(backend: Any, plan: Any, settings: Any, *, hooks: Any = (), progress: bool = False) -> Any:
        raise RuntimeError("out of memory (simulated)\nsecond line")

    out = tmp_path_factory.mktemp("bench-models")
    args = ["bench", "models", *RUN_ARGS, "--strategies", ",".join([*STRATEGIES, BROKEN]),
            "--json", str(out / "models.json"), "--chart", str(out / "models.png")]  # fmt: skip
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(strategies.STRATEGIES, BROKEN, broken)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli_main(args)
    return {
        "code": code,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "json": json.loads((out / "models.json").read_text()),
        "out": out,
        "args": args,
    }


def test_every_case_is_timed_and_ratios_are_against_the_pipeline(run: dict[str, Any]) -> None:
    assert run["code"] == 0, run["stderr"]
    entries = {e["model"]: e for e in run["json"]["models"]}
    assert list(entries) == [FLUX_MODEL, SD3_MODEL]
    assert entries[FLUX_MODEL]["geometry"]["hidden_size"] == 3072
    assert entries[SD3_MODEL]["geometry"]["hidden_size"] == 1536
    for entry in entries.values():
        assert entry["error"] is None
        cases = {c["case"]: c for c in entry["cases"]}
        assert list(cases) == ["pipeline", *STRATEGIES, BROKEN]
        pipeline = cases["pipeline"]
        for name in ["pipeline", *STRATEGIES]:
            case = cases[name]
            assert case["error"] is None
            for key in ("first_seconds", "seconds"):
                assert math.isfinite(case[key]) and case[key] > 0, (name, key)
            assert case["x_pipeline"] == pytest.approx(case["seconds"] / pipeline["seconds"])
            assert case["first_x_pipeline"] == pytest.approx(case["first_seconds"] / pipeline["seconds"])
            assert case["peak_bytes"] is not None and case["peak_bytes"] >= 0
            assert case["first_peak_bytes"] is not None and case["first_peak_bytes"] >= 0
            vanilla_peak = cases["vanilla"]["peak_bytes"]
            if vanilla_peak > 0:
                assert case["memory_x_vanilla"] == pytest.approx(case["peak_bytes"] / vanilla_peak)
        assert pipeline["x_pipeline"] == pytest.approx(1.0)
        # The work: one step is one transformer call (two on SD3's CFG batch, one call of batch 2).
        assert pipeline["transformer_calls"] == cases["vanilla"]["transformer_calls"] == 1
        assert pipeline["work_x_pipeline"] == cases["vanilla"]["work_x_pipeline"] == 1.0
        assert cases["regional"]["work_x_pipeline"] > 1.0  # the region prompts' text tokens
        for name in STRATEGIES:
            flops = cases[name]["published_flops"]
            assert cases[name]["work_x_pipeline"] == pytest.approx(flops / pipeline["published_flops"])
        assert cases["vanilla"]["ran"] == "vanilla" and pipeline["ran"] == "diffusers"
        # The reference is the same image: our sampler draws what the diffusers pipeline draws.
        assert cases["vanilla"]["max_pixel_difference_to_pipeline"] <= 1


def test_a_failing_strategy_is_recorded_and_the_run_goes_on(run: dict[str, Any]) -> None:
    for entry in run["json"]["models"]:
        failed = next(c for c in entry["cases"] if c["case"] == BROKEN)
        assert failed["error"] == "RuntimeError: out of memory (simulated)"
        assert failed["seconds"] is None and failed["x_pipeline"] is None
    # Only its first call was tried; every other case of the second model still ran both rounds.
    assert run["stderr"].count(f"] {BROKEN}: failed: RuntimeError") == 2


def test_table_legend_progress_and_chart(run: dict[str, Any]) -> None:
    table = run["stdout"]
    assert (
        "| model | case | ran | first s | warm s | first x pipeline | warm x pipeline | calls | work x pipeline |"
        in table
    )
    for model in (FLUX_MODEL, SD3_MODEL):
        for case in ["pipeline", *STRATEGIES]:
            assert f"| {model} | {case} |" in table
    assert "x pipeline: divided by the diffusers pipeline's warm seconds" in table
    stderr = run["stderr"]
    assert f"[{FLUX_MODEL} first 1/5] pipeline:" in stderr and f"[{SD3_MODEL} warm 4/5] stitch:" in stderr
    chart = run["out"] / "models.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in stderr and not chart.exists()
    else:
        from PIL import Image

        assert chart.read_bytes().startswith(b"\x89PNG")
        assert Image.open(chart).size == (750, 750)  # 110 px a case (5) + 200, by 750


def test_quiet_prints_the_table_and_no_progress() -> None:
    args = ["bench", "models", *RUN_ARGS, "--models", SD3_MODEL, "--strategies", "vanilla", "--quiet"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        assert cli_main(args) == 0
    assert stderr.getvalue() == ""
    assert f"| {SD3_MODEL} | vanilla | vanilla |" in stdout.getvalue()


def test_narrow_scale_counts_the_work_at_the_published_text_length(tmp_path: Path) -> None:
    out = tmp_path / "narrow.json"
    args = ["bench", "models", "--scale", "narrow", "--models", FLUX_MODEL, "--strategies", "vanilla",
            "--size", "64", "--steps", "2", "--quiet", "--json", str(out), "--chart", str(tmp_path / "w.png")]  # fmt: skip
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(args) == 0
    assert "Narrow scale: the seconds and memory are those of a model with 2 heads of 8" in stdout.getvalue()
    entry = json.loads(out.read_text())["models"][0]
    assert entry["geometry"]["scale"] == "narrow" and entry["geometry"]["t5_tokens"] == 512
    assert (entry["geometry"]["heads"], entry["geometry"]["head_dim"]) == (2, 8)
    for case in entry["cases"]:
        # 64 px: 4x4 packed tokens, beside FLUX.1-dev's 512 T5 tokens, in each of 2 steps.
        assert (case["transformer_calls"], case["token_rows"]) == (2, 2 * (16 + 512))
        assert case["work_x_pipeline"] == 1.0
    if (tmp_path / "w.png").exists():  # matplotlib is installed: one panel, the work (not the seconds)
        from PIL import Image

        assert Image.open(tmp_path / "w.png").size == (700, 425)


def test_outputs_are_never_overwritten(run: dict[str, Any], tmp_path: Path) -> None:
    before = (run["out"] / "models.json").read_bytes()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert cli_main(run["args"]) == 2  # refused before any model is built
    assert "already exists; pass --overwrite" in stderr.getvalue()
    assert (run["out"] / "models.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--models", "flux-pro"], "models"),
        (["--strategies", "vanilla,nope"], "strategies"),
        (["--strategies", "regional:nope=1"], "strategies"),
        (["--size", "100"], "size"),
        (["--size", "8192", "--models", "sd3.5-large"], "size"),
        (["--steps", "0"], "steps"),
        (["--scale", "medium"], "scale"),
        (["--dtype", "int8"], "dtype"),
        (["--device", "tpu"], "device"),
        (["--prompt", " "], "prompt"),
    ],
)
def test_bad_options_are_one_line_typed_errors(args: list[str], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        bench_models.main(args)
    assert error.value.field == field
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_says_what_to_use() -> None:
    with pytest.raises(
        InvalidInputError, match="device: CUDA is not available on this machine; use --device cpu"
    ):
        bench_models.main(["--device", "cuda"])
