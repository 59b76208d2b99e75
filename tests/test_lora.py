"""LoRAs: loaded through diffusers' PEFT backend, the same images as diffusers' pipelines give, every
strategy with them, one bound to an object's tokens, and bad files refused in one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline, two_box_plan
from lora_builders import random_lora
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.lora import load_loras, loaded_loras
from scenewright.backends.lora_files import inspect_lora, parse_lora, parse_loras
from scenewright.backends.sd3 import SD3Backend
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.object_lora import layer_stream, lora_render, object_loras
from scenewright.executor.sampler import SamplingSettings, make_generator, sample
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan

PROMPT = "a red apple left of a blue vase"


def _active(backend: Backend) -> set[str]:
    """The adapters that change the transformer's output now."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in backend.transformer.modules() if isinstance(m, LoraLayer)]
    if not layers or layers[0].disable_adapters:
        return set()
    return set(layers[0].active_adapters)


def _safetensors(path: Path, keys: list[str]) -> Path:
    """A safetensors file whose header lists ``keys`` (one float each)."""
    header = {
        k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, k in enumerate(keys)
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(keys))
    return path


# ---------------------------------------------------------------- parsing and bad input (no torch work)
def test_a_lora_value_names_its_source_scale_and_adapter() -> None:
    assert parse_lora("styles/ink.safetensors:0.7") == parse_lora("ink=styles/ink.safetensors:0.7")
    spec = parse_lora("owner/repo")
    assert (spec.source, spec.name, spec.scale) == ("owner/repo", "repo", 1.0)
    assert parse_lora("out/ink/pytorch_lora_weights.safetensors").name == "ink"


@pytest.mark.parametrize(
    "value", ["ink.safetensors:nan", "ink.safetensors:inf", "ink.safetensors:x", "ink.safetensors:99"]
)
def test_a_scale_that_is_not_a_finite_number_is_refused(value: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^lora scale: .*scale|^lora scale: .*number"):
        parse_lora(value)


def test_two_loras_of_one_name_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="two LoRAs are named 'ink'"):
        parse_loras(["a/ink.safetensors", "b/ink.safetensors"])


def test_a_file_that_is_not_a_lora_is_refused_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    model = _safetensors(tmp_path / "model.safetensors", ["transformer_blocks.0.attn.to_q.weight"])
    for path, problem in ((text, "not a safetensors file"), (model, "holds no LoRA weights")):
        with pytest.raises(InvalidInputError, match=f"^lora: .*{problem}") as raised:
            inspect_lora(parse_lora(str(path)), "flux")
        assert "\n" not in str(raised.value)


def test_a_lora_for_another_family_is_refused_before_loading(tmp_path: Path) -> None:
    sdxl = _safetensors(
        tmp_path / "sdxl.safetensors", ["lora_unet_down_blocks_0_attentions_0.lora_down.weight"]
    )
    flux = _safetensors(
        tmp_path / "flux.safetensors", ["transformer.single_transformer_blocks.0.proj_out.lora_A.weight"]
    )
    with pytest.raises(InvalidInputError, match="UNet model"):
        inspect_lora(parse_lora(str(sdxl)), "flux")
    with pytest.raises(InvalidInputError, match="LoRA for FLUX, not for this SD3 model"):
        inspect_lora(parse_lora(str(flux)), "sd3")
    assert inspect_lora(parse_lora(str(flux)), "flux").family == "flux"


def test_a_plan_lora_with_a_non_finite_scale_names_its_field() -> None:
    from pydantic import ValidationError

    from scenewright.planner.plan import describe_errors

    bad = {"prompt": "a circle", "objects": [{"name": "circle", "loras": [{"name": "ink", "scale": "nan"}]}]}
    with pytest.raises(ValidationError) as raised:
        Plan.model_validate(bad)
    assert describe_errors(raised.value) == ["objects[0].loras[0].scale: Input should be a finite number"]
    # Plans without LoRAs keep the JSON they always had.
    assert "loras" not in Plan.model_validate({"prompt": "a", "objects": [{"name": "circle"}]}).to_json_dict()["objects"][0]  # fmt: skip


def test_layers_are_told_apart_by_the_tokens_they_project() -> None:
    assert layer_stream("transformer_blocks.0.attn.to_q") == "image"
    assert layer_stream("transformer_blocks.0.attn.add_k_proj") == "text"
    assert layer_stream("transformer_blocks.0.ff_context.net.2") == "text"
    assert layer_stream("single_transformer_blocks.1.proj_mlp") == "joint"


# ---------------------------------------------------------------- FLUX and SD3.5 pipelines
@pytest.fixture(scope="module")
def lora_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {
        "flux": random_lora(tiny_flux_pipeline().transformer, root / "flux-style", "flux"),
        "sd3": random_lora(tiny_sd3_pipeline(sd35=True).transformer, root / "sd3-style", "sd3"),
    }


def _pipeline(family: str) -> object:
    return tiny_flux_pipeline() if family == "flux" else tiny_sd3_pipeline(sd35=True)


def _backend(family: str) -> Backend:
    if family == "flux":
        return FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    return SD3Backend(tiny_sd3_pipeline(sd35=True), max_sequence_length=16)


@pytest.mark.parametrize("family", ["flux", "sd3"], ids=["flux", "sd3.5"])
def test_vanilla_with_a_lora_is_diffusers_pipeline_with_it(family: str, lora_files: dict[str, Path]) -> None:
    settings = SamplingSettings(height=32, width=32, steps=3, guidance=3.5, seed=7)
    pipe = _pipeline(family)
    pipe.load_lora_weights(str(lora_files[family]), adapter_name="style")  # type: ignore[attr-defined]
    pipe.set_adapters(["style"], [0.8])  # type: ignore[attr-defined]
    expected = pipe(  # type: ignore[operator]
        PROMPT, height=32, width=32, num_inference_steps=3, guidance_scale=3.5,
        generator=make_generator(7), output_type="pt", max_sequence_length=16,
    ).images  # fmt: skip
    backend = _backend(family)
    plain = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    load_loras(backend, [f"{lora_files[family]}:0.8"])
    ours = sample(backend, backend.encode_prompts([PROMPT]), settings, progress=False).images
    assert (ours - expected).abs().max().item() < 1e-4
    assert (ours - plain).abs().max().item() > 1e-3  # the LoRA changes the image
    described = backend.describe()["loras"]
    assert described[0]["name"] == f"{family}-style" and described[0]["scale"] == 0.8
    assert len(described[0]["sha256"]) == 64


@pytest.fixture(scope="module")
def flux_pair(lora_files: dict[str, Path]) -> tuple[Backend, Backend]:
    plain = _backend("flux")
    styled = _backend("flux")
    load_loras(styled, [str(lora_files["flux"])])
    return plain, styled


# The costlier strategies run in the slow suite; the fast one keeps the same assertion on three.
SLOW = pytest.mark.slow
STRATEGIES = [
    "regional", "numina", "taca", pytest.param("stitch:object_pass=box", marks=SLOW),
    pytest.param("stitch:object_pass=free", marks=SLOW), pytest.param("refine", marks=SLOW),
]  # fmt: skip


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_with_a_lora_and_draws_another_image(
    flux_pair: tuple[Backend, Backend], strategy: str
) -> None:
    plain, styled = flux_pair
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=5)
    without = run_strategy(strategy, plain, two_box_plan(), settings).sample.images
    with_lora = run_strategy(strategy, styled, two_box_plan(), settings).sample.images
    assert torch.isfinite(with_lora).all()
    assert (with_lora - without).abs().max().item() > 1e-3


def test_strategies_run_with_the_lora_fused_into_the_weights(lora_files: dict[str, Path]) -> None:
    settings = SamplingSettings(32, 32, steps=2, guidance=3.0, seed=5)
    unfused = _backend("sd3")
    load_loras(unfused, [str(lora_files["sd3"])])
    fused = _backend("sd3")
    load_loras(fused, [str(lora_files["sd3"])], fuse=True)
    for strategy in ("regional",):
        a = run_strategy(strategy, unfused, two_box_plan(), settings).sample.images
        b = run_strategy(strategy, fused, two_box_plan(), settings).sample.images
        assert (a - b).abs().max().item() < 1e-4


def test_a_lora_for_another_model_of_the_family_is_refused_in_one_line(lora_files: dict[str, Path]) -> None:
    tiny = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))
    with pytest.raises(InvalidInputError, match=r"^lora: .*does not fit tiny") as raised:
        load_loras(tiny, [str(lora_files["flux"])])
    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------- a LoRA per object (tiny model)
@pytest.fixture(scope="module")
def tiny_styled(tmp_path_factory: pytest.TempPathFactory) -> TinyBackend:
    backend = TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1), seed=3)
    path = random_lora(backend.transformer, tmp_path_factory.mktemp("tiny") / "ink", "flux", seed=1)
    load_loras(backend, [f"ink={path}"])
    return backend


def _bound_plan(scale: float = 1.0, box: tuple[float, float, float, float] = (0.0, 0.0, 0.5, 1.0)) -> Plan:
    return Plan.model_validate(
        {
            "prompt": "a red circle and a blue square",
            "objects": [
                {
                    "name": "circle",
                    "attributes": ["red"],
                    "boxes": [box],
                    "loras": [{"name": "ink", "scale": scale}],
                },
                {"name": "square", "attributes": ["blue"], "boxes": [(0.5, 0.0, 1.0, 1.0)]},
            ],
        }
    )


def _velocity(backend: TinyBackend, plan: Plan, bound: bool) -> torch.Tensor:
    """One forward pass over the plan's region prompts, with the object LoRA bound or not."""
    from scenewright.executor.regional import regional_edit

    settings = SamplingSettings(32, 32, steps=2, guidance=1.0, seed=1)
    encoding, _, mask = regional_edit(backend, plan, settings)
    latents = backend.prepare_noise(1, 32, 32, torch.Generator().manual_seed(1))
    with torch.no_grad():
        if not bound:
            return backend.forward(latents, torch.full((1,), 700.0), encoding, height=32, width=32)
        with object_loras(backend, plan, encoding, mask, settings):
            return backend.forward(latents, torch.full((1,), 700.0), encoding, height=32, width=32)


def test_an_object_lora_adds_exactly_the_lora_on_its_tokens(tiny_styled: TinyBackend) -> None:
    plan = _bound_plan(box=(0.0, 0.0, 1.0, 1.0))
    with lora_render(tiny_styled, plan):
        assert _active(tiny_styled) == set()  # bound: off outside its objects' passes
        off = _velocity(tiny_styled, plan, bound=False)
        zero = _velocity(tiny_styled, _bound_plan(0.0, (0.0, 0.0, 1.0, 1.0)), bound=True)
        bound = _velocity(tiny_styled, plan, bound=True)
        assert _active(tiny_styled) == set()
    whole = _velocity(tiny_styled, plan, bound=False)
    assert _active(tiny_styled) == {"ink"}  # a whole-image LoRA again after the render
    assert torch.allclose(zero, off, atol=1e-6)  # scale 0: the model without the LoRA
    assert (bound - off).abs().max().item() > 1e-3
    # Over every token but the background's and the base prompt's it is nearly the whole-image LoRA.
    assert (bound - whole).abs().max() < (off - whole).abs().max()


def test_an_object_lora_is_local_where_the_whole_image_lora_is_not(tiny_styled: TinyBackend) -> None:
    left = _bound_plan()
    whole = _velocity(tiny_styled, left, bound=False)
    with lora_render(tiny_styled, left):
        off = _velocity(tiny_styled, left, bound=False)
        bound = _velocity(tiny_styled, left, bound=True)
    rows, cols = tiny_styled.token_grid(32, 32)

    def change(v: torch.Tensor) -> torch.Tensor:
        return (v - off).abs().reshape(rows, cols, -1).mean(-1)

    own, other = change(bound)[:, : cols // 2].mean(), change(bound)[:, cols // 2 :].mean()
    assert own > 2 * other  # the change sits in the object's box
    assert change(whole)[:, cols // 2 :].mean() > 2 * other  # the whole-image LoRA reaches the other box


def test_regional_finish_binds_an_object_lora_to_its_boxes_image_tokens(tiny_styled: TinyBackend) -> None:
    from scenewright.executor.object_lora import box_loras

    settings = SamplingSettings(32, 32, steps=2, guidance=1.0, seed=1)
    scene = tiny_styled.encode_prompts(["a red circle and a blue square"])
    latents = tiny_styled.prepare_noise(1, 32, 32, torch.Generator().manual_seed(1))

    def velocity(plan: Plan | None) -> torch.Tensor:
        with torch.no_grad():
            if plan is None:
                return tiny_styled.forward(latents, torch.full((1,), 300.0), scene, height=32, width=32)
            with box_loras(tiny_styled, plan, scene, settings):
                return tiny_styled.forward(latents, torch.full((1,), 300.0), scene, height=32, width=32)

    with lora_render(tiny_styled, _bound_plan()):
        off = velocity(None)
        bound, zero = velocity(_bound_plan()), velocity(_bound_plan(0.0))
        assert _active(tiny_styled) == set()
    rows, cols = tiny_styled.token_grid(32, 32)
    change = (bound - off).abs().reshape(rows, cols, -1).mean(-1)
    assert torch.allclose(zero, off, atol=1e-6)
    assert change[:, : cols // 2].mean() > 2 * change[:, cols // 2 :].mean()  # in the object's box


@pytest.mark.parametrize(
    "strategy", ["regional", "stitch:object_pass=box:hold_fraction=0.25", "stitch:object_pass=free"]
)
def test_an_object_lora_changes_a_render_and_leaves_the_adapters_as_they_were(
    tiny_styled: TinyBackend, strategy: str
) -> None:
    settings = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=2)
    plain = run_strategy(strategy, tiny_styled, _bound_plan(0.0), settings).sample.images
    bound = run_strategy(strategy, tiny_styled, _bound_plan(1.0), settings).sample.images
    assert torch.isfinite(bound).all() and (bound - plain).abs().max().item() > 1e-3
    assert _active(tiny_styled) == {"ink"}  # a whole-image LoRA again after the render


def test_an_unknown_adapter_in_a_plan_names_its_field(tiny_styled: TinyBackend) -> None:
    plan = _bound_plan()
    plan.objects[0].loras[0].name = "nowhere"
    with pytest.raises(
        InvalidInputError, match=r"^objects\[0\]\.loras\.name: no LoRA named 'nowhere'.*use one of ink"
    ):
        run_strategy("regional", tiny_styled, plan, SamplingSettings(32, 32, steps=2, guidance=3.0, seed=2))
    assert loaded_loras(tiny_styled).keys() == {"ink"}
    np.testing.assert_equal(sorted(_active(tiny_styled)), ["ink"])


# ---------------------------------------------------------------- metadata and rerender
@pytest.fixture(scope="module")
def embedded_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LoRA for the embedded model's transformer (the default backend of the faces)."""
    return random_lora(
        TinyBackend.embedded().transformer, tmp_path_factory.mktemp("embedded") / "ink", "flux"
    )


@pytest.mark.usefixtures("one_torch_thread")
def test_the_png_records_each_lora_and_rerender_refuses_a_missing_or_changed_one(
    embedded_lora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from PIL import Image

    from scenewright.backends.lora_files import file_sha256
    from scenewright.cli import main
    from scenewright.tools.output import read_png_metadata

    lora = tmp_path / "ink.safetensors"
    shutil.copy(embedded_lora, lora)
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["generate", "a red circle", "--out", str(first), "--steps", "2", "--quiet",
            "--strategy", "vanilla", "--refine-rounds", "0", "--lora", f"{lora}:0.5"]  # fmt: skip
    assert main(args) == 0
    recorded = read_png_metadata(first / "image.png")["backend"]["loras"]
    assert recorded == [
        {"name": "ink", "source": str(lora), "sha256": file_sha256(lora), "scale": 0.5, "shipped": False}
    ]
    capsys.readouterr()
    assert main(["rerender", str(first / "image.png"), "--out", str(again), "--quiet"]) == 0
    assert Image.open(first / "image.png").tobytes() == Image.open(again / "image.png").tobytes()
    lora.write_bytes(lora.read_bytes()[:-4] + b"\1\2\3\4")  # another file under the same name
    capsys.readouterr()
    assert main(["rerender", str(first / "image.png"), "--out", str(tmp_path / "changed"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: lora ink: ") and "content hash differs" in err[0]
    lora.unlink()
    assert main(["rerender", str(first / "image.png"), "--out", str(tmp_path / "gone"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "which is missing here" in err[0]


def test_generate_refuses_a_bad_lora_before_loading_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.cli import main

    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    for value, needle in ((str(text), "not a safetensors file"), (f"{text}:inf", "not a finite scale"),
                          (str(tmp_path / "none.safetensors"), "does not exist")):  # fmt: skip
        assert main(["generate", "a red circle", "--out", str(tmp_path / "o"), "--lora", value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: lora") and needle in err[0]
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the toy-world measurement's judge
def test_the_object_lora_bench_tells_a_recoloured_object_from_one_that_kept_its_colour() -> None:
    from PIL import Image

    from scenewright.bench.object_lora import Tally, judge
    from scenewright.toyworld.lora_train import RECOLOR
    from scenewright.toyworld.scene import Scene, SceneObject

    plan = Plan.model_validate(
        {
            "prompt": "a red circle and a blue square",
            "objects": [
                {"name": "circle", "attributes": ["red"], "boxes": [(0.05, 0.3, 0.4, 0.7)]},
                {"name": "square", "attributes": ["blue"], "boxes": [(0.6, 0.3, 0.95, 0.7)]},
            ],
        }
    )
    # The circle drawn in its LoRA colour (red -> green), the square in its own.
    scene = Scene(
        [
            SceneObject("circle", RECOLOR["red"], (4, 20, 25, 44)),
            SceneObject("square", "blue", (39, 20, 60, 44)),
        ]
    )
    tally = Tally()
    row = judge(Image.fromarray(scene.render()), plan, {0}, RECOLOR, tally)
    assert row == {
        "a_changed": True,
        "b_changed": False,
        "a_kept": False,
        "b_kept": True,
        "placed": True,
        "counted": True,
    }
    # Judged as if no LoRA applied, the same image misses the circle's colour.
    assert judge(Image.fromarray(scene.render()), plan, set(), RECOLOR, tally)["placed"] is False
    assert tally.a_changed == 2 and tally.placed == 1
