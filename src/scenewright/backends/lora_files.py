"""What a LoRA is before torch: ``--lora PATH_OR_HUB_ID[:SCALE]`` parsed, its file found, its keys
read from the safetensors header, its family told and its content hashed.

Everything here reads bytes and JSON only, so a file that is not a LoRA, a LoRA made for another
family (an SDXL LoRA given to FLUX) or a scale that is not a finite number is refused in one line
before any weights load; :mod:`scenewright.backends.lora` loads what these name.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from scenewright.errors import InvalidInputError

# The folder beside a model's weights that holds the LoRAs shipped with it (``NAME.safetensors``
# with ``NAME.json`` saying what it draws and its trigger).
SHIPPED_LORA_DIR = "loras"
# Adapter names are what plans name: short, no path parts, no spaces.
ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# A scale beyond this is no style any more but noise (diffusers' examples stay within 0 to 2).
MAX_SCALE = 8.0
# The largest safetensors header read (a LoRA's header lists its tensors: well under this).
MAX_HEADER_BYTES = 64 * 1024 * 1024
# The weight files a LoRA folder (or a hub repository) holds, in the order diffusers looks.
WEIGHT_NAMES = ("pytorch_lora_weights.safetensors",)
# Key fragments of LoRAs for UNet families (SD 1.x, SDXL): no MMDiT has these modules.
UNET_KEYS = ("down_blocks", "up_blocks", "mid_block", "lora_unet_down", "lora_unet_up", "lora_unet_mid")
# Key fragments only FLUX-class transformers have, and only SD3's original (non-diffusers) layout has.
FLUX_KEYS = ("single_transformer_blocks", "single_blocks", "double_blocks")
SD3_KEYS = ("joint_blocks", "context_block", "x_block")
KEYED_FAMILIES = ("flux", "sd3")


@dataclass(frozen=True)
class LoraSpec:
    """One ``--lora``: where its weights are, the name plans call it by and its scale."""

    source: str  # a local file or folder, or a hub id
    name: str
    scale: float = 1.0


@dataclass(frozen=True)
class LoraFile:
    """A LoRA found on disk: its weights file, the family its keys belong to and their hash."""

    spec: LoraSpec
    path: Path
    family: str | None  # "flux", "sd3", or None where the keys fit either
    sha256: str


def lora_family_of(backend_family: str) -> str:
    """The family a backend's LoRAs are made for: the embedded ("tiny") models are FLUX transformers."""
    return "flux" if backend_family == "tiny" else backend_family


def check_scale(value: object, field: str) -> float:
    """A finite number within +-MAX_SCALE, or one line naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInputError(field, f"{value!r} is not a number", "give a scale such as 0.8")
    try:
        scale = float(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not a number", "give a scale such as 0.8") from None
    if not math.isfinite(scale) or abs(scale) > MAX_SCALE:
        raise InvalidInputError(
            field, f"{value!r} is not a finite scale", f"use -{MAX_SCALE:g} to {MAX_SCALE:g}"
        )
    return scale


def check_adapter_name(name: str, field: str) -> str:
    if not ADAPTER_NAME.match(name):
        raise InvalidInputError(
            field, f"{name[:80]!r} is not an adapter name", "use letters, digits, '-' and '_' (up to 64)"
        )
    return name


def _default_name(source: str) -> str:
    """The adapter name a source gets: its file's stem, or its folder's or repository's name."""
    path = Path(source.rstrip("/"))
    stem = path.name.removesuffix(".safetensors")
    if path.name in WEIGHT_NAMES and path.parent.name:  # diffusers' file name: the folder says which
        stem = path.parent.name
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "lora"
    return cleaned[:64] if cleaned[0].isalnum() else f"lora_{cleaned}"[:64]


def parse_lora(text: str, field: str = "lora") -> LoraSpec:
    """``PATH_OR_HUB_ID[:SCALE]`` (``NAME=`` before it names the adapter; default the file's stem)."""
    text = text.strip()
    name = ""
    head, eq, tail = text.partition("=")
    if eq and ADAPTER_NAME.match(head):
        name, text = head, tail
    source, colon, scale_text = text.rpartition(":")
    if not colon or "/" in scale_text or "\\" in scale_text:
        source, scale_text = text, ""
    if not source:
        raise InvalidInputError(
            field, f"{text!r} names no file or hub id", "use --lora PATH_OR_HUB_ID[:SCALE]"
        )
    scale = check_scale(scale_text, f"{field} scale") if scale_text else 1.0
    return LoraSpec(source=source, name=check_adapter_name(name or _default_name(source), field), scale=scale)


def parse_loras(texts: list[str] | tuple[str, ...] | None, field: str = "lora") -> list[LoraSpec]:
    """Every ``--lora`` given, with distinct names."""
    specs = [t if isinstance(t, LoraSpec) else parse_lora(t, field) for t in texts or []]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise InvalidInputError(
                field, f"two LoRAs are named {spec.name!r}", "name one with --lora NAME=PATH[:SCALE]"
            )
        seen.add(spec.name)
    return specs


def safetensors_keys(path: Path, field: str = "lora") -> list[str]:
    """The tensor names of a safetensors file, from its header alone (no tensor is read)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise ValueError("too short")
            (size,) = struct.unpack("<Q", raw)
            if not 0 < size <= MAX_HEADER_BYTES:
                raise ValueError("bad header size")
            header = json.loads(handle.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            field, f"{path} is not a safetensors file ({error})", "give a LoRA's .safetensors file"
        ) from None
    if not isinstance(header, dict):
        raise InvalidInputError(field, f"{path} has no tensor table", "give a LoRA's .safetensors file")
    return [key for key in header if key != "__metadata__"]


def lora_family(keys: list[str], path: Path, field: str = "lora") -> str | None:
    """The family a LoRA's keys were made for ("flux", "sd3", None for either), or one line when
    they are no LoRA's keys or a UNet family's."""
    if not any("lora" in key.lower() for key in keys):
        raise InvalidInputError(
            field,
            f"{path} holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up keys)",
            "give a LoRA file",
        )
    if any(fragment in key for key in keys for fragment in UNET_KEYS):
        raise InvalidInputError(
            field, f"{path} is a LoRA for a UNet model (SD 1.x/SDXL), not an MMDiT", "give a FLUX or SD3 LoRA"
        )
    if any(fragment in key for key in keys for fragment in FLUX_KEYS):
        return "flux"
    if any(fragment in key for key in keys for fragment in SD3_KEYS):
        return "sd3"
    return None


def _weights_in(folder: Path, field: str) -> Path:
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.safetensors"))
    if len(found) != 1:
        raise InvalidInputError(
            field,
            f"{folder} holds {len(found)} .safetensors files",
            "name the LoRA's file itself, not its folder",
        )
    return found[0]


def _from_hub(repo: str, field: str) -> Path:
    """A hub repository's LoRA file, through the local cache (offline: the cache only)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from scenewright.backends.specs import _hub_offline

    try:
        folder = snapshot_download(
            repo, allow_patterns=["*.safetensors", "*.json"], local_files_only=_hub_offline()
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise InvalidInputError(
            field, f"{repo} is no local file and could not be fetched from the hub ({type(error).__name__})",
            "give a local .safetensors file or a hub id this machine can reach",
        ) from None  # fmt: skip
    return _weights_in(Path(folder), field)


def locate(spec: LoraSpec, field: str = "lora") -> Path:
    """The weights file ``spec.source`` names: a file, a folder holding one, or a hub id."""
    path = Path(spec.source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _weights_in(path, field)
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", spec.source) and not spec.source.startswith("."):
        return _from_hub(spec.source, field)
    raise InvalidInputError(
        field, f"{spec.source} does not exist", "give a .safetensors file, a folder or a hub id"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inspect_lora(spec: LoraSpec, backend_family: str | None = None, field: str = "lora") -> LoraFile:
    """Find, read and hash ``spec``'s file; refuse it in one line when it is no LoRA or when its keys
    belong to another family than ``backend_family`` (see :func:`lora_family_of`)."""
    path = locate(spec, field)
    family = lora_family(safetensors_keys(path, field), path, field)
    # Key names tell FLUX.1 and SD3 LoRAs apart; other families (FLUX.2's and Chroma's blocks share
    # FLUX.1's names) are checked by their pipeline's loader, whose refusal names the mismatch.
    if backend_family in KEYED_FAMILIES and family is not None and family != backend_family:
        assert backend_family is not None
        raise InvalidInputError(
            field, f"{spec.source} is a LoRA for {family.upper()}, not for this {backend_family.upper()} model",
            f"give a {backend_family.upper()} LoRA",
        )  # fmt: skip
    return LoraFile(spec=spec, path=path, family=family, sha256=file_sha256(path))


def shipped_loras(model_dir: Path | None) -> dict[str, Path]:
    """The LoRAs shipped beside a model, by name (``loras/NAME.safetensors``)."""
    if model_dir is None or not (model_dir / SHIPPED_LORA_DIR).is_dir():
        return {}
    return {p.stem: p for p in sorted((model_dir / SHIPPED_LORA_DIR).glob("*.safetensors"))}


def shipped_lora_notes(model_dir: Path | None) -> dict[str, dict[str, str]]:
    """What each shipped LoRA draws and its trigger, from ``NAME.json`` beside it (or {})."""
    notes: dict[str, dict[str, str]] = {}
    for name, path in shipped_loras(model_dir).items():
        card = path.with_suffix(".json")
        try:
            data = json.loads(card.read_text()) if card.is_file() else {}
        except json.JSONDecodeError:
            data = {}
        notes[name] = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float)}
    return notes
