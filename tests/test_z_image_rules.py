"""Z-Image's requests refused before weights load, and its checkpoints found by their family."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scenewright.agent.bounds import check_sampling
from scenewright.backends.specs import ALIASES, BackendSpec, resolve_backend
from scenewright.backends.z_image_rules import check_z_image_strategy, is_distilled
from scenewright.errors import InvalidInputError

TURBO = ALIASES["z-image"]


def test_turbo_is_the_hub_checkpoint_and_is_distilled() -> None:
    assert (TURBO.family, TURBO.source, TURBO.size_multiple) == ("z-image", "Tongyi-MAI/Z-Image-Turbo", 16)
    assert is_distilled(TURBO)
    assert not is_distilled(BackendSpec("base", "z-image", "Tongyi-MAI/Z-Image", 16, 16))


@pytest.mark.parametrize(
    ("guidance", "negative", "field"),
    [(3.5, "", "guidance"), (None, "blurry", "negative-prompt"), (0.0, "blurry", "negative-prompt")],
)
def test_distilled_z_image_refuses_guidance_and_negative_prompt(
    guidance: float | None, negative: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_sampling(TURBO, None, None, None, guidance, negative)
    assert caught.value.field == field and "\n" not in str(caught.value)
    check_sampling(TURBO, 8, 1024, 768, 0.0, "")  # the published settings pass
    # A CFG checkpoint takes both.
    check_sampling(
        BackendSpec("base", "z-image", "Tongyi-MAI/Z-Image", 16, 16), 50, None, None, 6.0, "blurry"
    )


def test_a_size_off_the_patch_grid_names_the_size_to_use() -> None:
    with pytest.raises(InvalidInputError, match="use --height 1024") as caught:
        check_sampling(TURBO, None, 1020, 1024, None)
    assert caught.value.field == "height"


@pytest.mark.parametrize("strategy", ["regional:pooled=box", "stitch:object_pass=box:pooled=box_single"])
def test_options_that_need_a_pooled_vector_are_refused(strategy: str) -> None:
    with pytest.raises(InvalidInputError, match="pooled=scene") as caught:
        check_z_image_strategy(TURBO, strategy)
    assert caught.value.field.endswith(".pooled")
    check_z_image_strategy(TURBO, "regional:pooled=scene")
    check_z_image_strategy(ALIASES["flux-dev"], strategy)  # FLUX.1 has one


def test_a_z_image_folder_resolves_to_its_family(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "ZImagePipeline"}))
    spec = resolve_backend(str(tmp_path))
    assert spec.family == "z-image" and spec.size_multiple == 16


def test_generate_refuses_guidance_on_turbo_without_torch() -> None:
    """The refusal comes before torch is imported: one line on stderr, exit code 2."""
    code = (
        "import sys; from scenewright.cli import main\n"
        "rc = main(['generate', 'a red apple', '--backend', 'z-image', '--guidance', '4'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(rc)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "guidance" in run.stderr
