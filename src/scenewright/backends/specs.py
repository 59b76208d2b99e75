"""What a backend is before torch: its name, family, weights and the sizes it takes.

Everything here runs without torch, diffusers or weights, so that ``--backend``, ``--height``,
``--width``, ``--device`` and ``--cpu-offload`` are refused in well under a second; ``registry``
loads what these name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from scenewright.errors import BackendError, InvalidInputError

# Larger images than any of these models was trained for: FLUX.1 and SD3.5 go to about 2 MP.
DEFAULT_MAX_SIZE = 2048
# A toy-world model draws the scenes of the size it learnt (64 px for the embedded ones); further
# than this factor away it returns black or noise (and a 1024 px image costs minutes for that).
TINY_SIZE_FACTOR = 2
TINY_TRAINED_SIZE = 64
TINY_MAX_SIZE = TINY_TRAINED_SIZE * TINY_SIZE_FACTOR
OFFLOAD_MODES = ("model", "sequential")
# Families whose guidance is distilled into the model (no unconditional pass): a negative prompt
# would be silently ignored there, so it is refused.
GUIDANCE_DISTILLED_FAMILIES = frozenset({"flux"})
# --quantize: diffusers' bitsandbytes (CUDA) and torchao int8 weight-only (any device) loadings.
QUANTIZE_CHOICES = ("none", "bnb-4bit", "bnb-8bit", "torchao-int8")
# The embedded 8x8-token toy model, shipped inside the package.
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "toyworld"


def check_size(
    name: str, multiple: int, minimum: int, height: int, width: int, maximum: int = DEFAULT_MAX_SIZE
) -> None:
    """Shared size rule: positive multiples of the family's patch size, from ``minimum`` to ``maximum``."""
    for field_name, value in (("height", height), ("width", width)):
        if value > maximum:
            raise InvalidInputError(
                field_name,
                f"{value} is larger than backend '{name}' can draw (at most {maximum})",
                f"use --{field_name} {maximum} or less",
            )
        if value < minimum or value % multiple:
            nearest = max(minimum, round(value / multiple) * multiple)
            raise InvalidInputError(
                field_name,
                f"{value} cannot be taken by backend '{name}' (needs a multiple of {multiple}, at least {minimum})",
                f"use --{field_name} {nearest}",
            )


@dataclass(frozen=True)
class BackendSpec:
    """A backend before loading: which family, where its weights are, what sizes it takes."""

    name: str
    family: str  # "tiny", "flux", "sd3" or "flux2"
    source: str | None  # hub id or local folder; None for the embedded model
    size_multiple: int
    min_size: int
    max_size: int = DEFAULT_MAX_SIZE


def tiny_sizes(patch: int, trained: int) -> tuple[int, int, int]:
    """A toy-world model's sizes: a multiple of its patch, at least 4 patches and half the size it
    learnt, at most twice that size (the one rule the spec, the loaded backend and the docs say)."""
    return patch, max(patch * 4, trained // TINY_SIZE_FACTOR), trained * TINY_SIZE_FACTOR


def tiny_spec(name: str, source: str | None, patch: int, trained: int) -> BackendSpec:
    return BackendSpec(name, "tiny", source, *tiny_sizes(patch, trained))


# The 16x16-token toy model shipped beside the default (4x4-pixel patches; see its TRAINING.md).
TINY16_DIR = Path(__file__).resolve().parent.parent / "models" / "toyworld16"

ALIASES: dict[str, BackendSpec] = {
    # Their codec.json files say the same (patch 8 and 4, trained on 64 px); a test holds them equal.
    "tiny": tiny_spec("tiny", None, 8, TINY_TRAINED_SIZE),
    "tiny16": tiny_spec("tiny16", str(TINY16_DIR), 4, TINY_TRAINED_SIZE),
    "flux-dev": BackendSpec("flux-dev", "flux", "black-forest-labs/FLUX.1-dev", 16, 16),
    "flux-schnell": BackendSpec("flux-schnell", "flux", "black-forest-labs/FLUX.1-schnell", 16, 16),
    "sd3-medium": BackendSpec("sd3-medium", "sd3", "stabilityai/stable-diffusion-3-medium-diffusers", 16, 16),
    "sd3.5-medium": BackendSpec("sd3.5-medium", "sd3", "stabilityai/stable-diffusion-3.5-medium", 16, 16),
    "sd3.5-large": BackendSpec("sd3.5-large", "sd3", "stabilityai/stable-diffusion-3.5-large", 16, 16),
    "flux2-dev": BackendSpec("flux2-dev", "flux2", "black-forest-labs/FLUX.2-dev", 16, 16),
    "flux2-klein-4b": BackendSpec("flux2-klein-4b", "flux2", "black-forest-labs/FLUX.2-klein-4B", 16, 16),
    "flux2-klein-9b": BackendSpec("flux2-klein-9b", "flux2", "black-forest-labs/FLUX.2-klein-9B", 16, 16),
    "flux2-klein-base-4b": BackendSpec(
        "flux2-klein-base-4b", "flux2", "black-forest-labs/FLUX.2-klein-base-4B", 16, 16
    ),
    "flux2-klein-base-9b": BackendSpec(
        "flux2-klein-base-9b", "flux2", "black-forest-labs/FLUX.2-klein-base-9B", 16, 16
    ),
}
ALIASES["z-image"] = BackendSpec("z-image", "z-image", "Tongyi-MAI/Z-Image-Turbo", 16, 16)
# Qwen-Image: a 2x2 patch over the VAE's 8x cells; Chroma: FLUX.1's packing. Both 16 px a token.
ALIASES["qwen-image"] = BackendSpec("qwen-image", "qwen-image", "Qwen/Qwen-Image", 16, 16)
ALIASES["chroma"] = BackendSpec("chroma", "chroma", "lodestones/Chroma1-HD", 16, 16)
ALIASES["flux"] = ALIASES["flux-dev"]
ALIASES["sd3"] = ALIASES["sd3-medium"]
ALIASES["sd3.5"] = ALIASES["sd3.5-medium"]
ALIASES["flux2"] = ALIASES["flux2-dev"]
ALIASES["flux2-klein"] = ALIASES["flux2-klein-4b"]  # the Apache-licensed, step-distilled klein
ALIASES["flux2-klein-base"] = ALIASES["flux2-klein-base-4b"]

_PIPELINE_FAMILIES = {"FluxPipeline": "flux", "StableDiffusion3Pipeline": "sd3"}
_PIPELINE_FAMILIES["QwenImagePipeline"] = "qwen-image"
_PIPELINE_FAMILIES["ChromaPipeline"] = "chroma"
_PIPELINE_FAMILIES["ZImagePipeline"] = "z-image"
_PIPELINE_FAMILIES.update({"Flux2Pipeline": "flux2", "Flux2KleinPipeline": "flux2"})


def _family_from_index(index_file: Path, name: str) -> str:
    from scenewright.untrusted import load_json

    try:
        index = load_json(
            index_file.read_bytes(), "backend", "pass a FLUX.1, FLUX.2 or SD3 checkpoint folder"
        )
    except OSError as error:
        raise BackendError(f"backend: cannot read {index_file} ({error.strerror or error})") from None
    found = index.get("_class_name", "") if isinstance(index, dict) else ""
    # A list names custom pipeline code (["module", "Class"]): never run, refused like any other.
    class_name = found if isinstance(found, str) else "custom-code"
    family = _PIPELINE_FAMILIES.get(class_name)
    if family is None:
        raise BackendError(
            f"backend: '{name}' is a {class_name or 'unknown'} checkpoint; "
            f"scenewright runs {', '.join(sorted(_PIPELINE_FAMILIES))} checkpoints"
        )
    return family


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection attempt, so that a machine without network fails in seconds rather
    than after the hub client's retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    parsed = urlparse(constants.ENDPOINT)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_model_index(repo_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return Path(found) if isinstance(found, str) else None


def _not_cached(name: str, repo_id: str, why: str) -> BackendError:
    return BackendError(
        f"backend: '{name}' ({repo_id}) is not in the local Hugging Face cache and {why}; "
        f"download it where there is network (`hf download {repo_id}`) or pass a local folder"
    )


def resolve_backend(name_or_path: str) -> BackendSpec:
    """Turn ``--backend`` into a :class:`BackendSpec` without loading weights."""
    value = name_or_path.strip()
    if not value:
        raise InvalidInputError("backend", "is empty", f"use one of {', '.join(sorted(ALIASES))} or a folder")
    if value in ALIASES:
        spec = ALIASES[value]
        return spec if spec.source is None else resolve_hub_or_folder(spec.source, name=value)
    path = Path(value).expanduser()
    if path.exists():
        return resolve_hub_or_folder(str(path), name=value)
    if value.startswith((".", "/", "~")) or value.count("/") > 1 or "\\" in value:
        raise BackendError(f"backend: folder {value} does not exist; check the path or use a backend name")
    if value.count("/") == 1:
        return resolve_hub_or_folder(value, name=value)
    raise BackendError(
        f"backend: unknown backend '{value}'; use one of {', '.join(sorted(ALIASES))}, "
        "a Hugging Face id such as black-forest-labs/FLUX.1-schnell, or a local checkpoint folder"
    )


def resolve_hub_or_folder(source: str, name: str) -> BackendSpec:
    """Find the family of a local folder or hub id from its ``model_index.json``."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "codec.json").is_file():
            codec = json.loads((path / "codec.json").read_text())
            patch, trained = int(codec.get("patch", 4)), int(codec.get("image_size", TINY_TRAINED_SIZE))
            return tiny_spec(name, str(path), patch, trained)
        index = path / "model_index.json"
        if not index.is_file():
            raise BackendError(
                f"backend: folder {path} has no model_index.json; pass a diffusers checkpoint folder"
            )
        return BackendSpec(name, _family_from_index(index, name), str(path), 16, 16)
    if path.exists():
        raise BackendError(f"backend: {path} is a file; pass a checkpoint folder or a Hugging Face id")
    cached = _cached_model_index(source)
    if cached is None:
        if _hub_offline():
            raise _not_cached(name, source, "HF_HUB_OFFLINE is set")
        if not _hub_reachable():
            raise _not_cached(name, source, "the Hugging Face hub cannot be reached")
        try:
            from huggingface_hub import hf_hub_download

            cached = Path(hf_hub_download(source, "model_index.json"))
        except Exception as error:  # any hub failure (network, auth, missing repo) ends the same way
            raise _not_cached(name, source, f"could not be fetched ({type(error).__name__})") from error
    return BackendSpec(name, _family_from_index(cached, name), source, 16, 16)


_DEVICE = re.compile(r"(cpu|cuda)(:\d+)?")
# Device types torch parses but scenewright does not run on (told apart from words torch refuses).
_OTHER_DEVICE_TYPES = ("mps", "xpu", "meta", "hip", "xla", "lazy", "hpu", "mtia", "ipu", "ve", "fpga",
                       "maia", "vulkan", "mkldnn", "opengl", "opencl", "ideep", "privateuseone")  # fmt: skip


def check_device_name(value: str | None) -> None:
    """Refuse a ``--device`` that is not ``cpu``, ``cuda`` or ``cuda:N`` (whether this machine
    has it is ``registry.resolve_device``'s question, which needs torch)."""
    if value is None or value == "" or _DEVICE.fullmatch(value):
        return
    kind, _, index = value.partition(":")
    if kind in _OTHER_DEVICE_TYPES and (not index or index.isdigit()):
        raise InvalidInputError("device", f"'{value}' is not supported", "use --device cpu or --device cuda")
    raise InvalidInputError("device", f"'{value}' is not a device", "use --device cpu or --device cuda")
