"""Checkpoints the tools load from ``transformers`` (detectors, CLIP, SAM): what the user named,
checked without weights, and the device a loaded model lives on.

``--detector`` and ``--sam`` accept a folder or a hub id; both are checked the same way so that a
wrong path is one line naming the field before anything loads, and a folder never touches the
network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scenewright.errors import BackendError, InvalidInputError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class CheckpointKind:
    """What one option accepts: its field in errors, the fix, the config ``model_type``s it takes
    and how a refusal names them, and what a path that is no folder is not."""

    field: str
    fix: str
    types: tuple[str, ...]
    wanted: str  # e.g. "SAM or SAM 2"
    not_folder: str = "is not a model folder"


def is_hub_id(text: str) -> bool:
    """``owner/name`` as the hub spells ids (a relative path like ``./a/b`` is not one)."""
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "~"))


def folder_model_type(path: Path, kind: CheckpointKind) -> str:
    """The ``model_type`` in a checkpoint folder's ``config.json``, refused unless ``kind`` takes it."""
    config = path / "config.json"
    if not config.is_file():
        raise InvalidInputError(kind.field, f"{path} has no config.json", kind.fix)
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as error:
        raise InvalidInputError(kind.field, f"{config} is not a model config", kind.fix) from error
    if model_type not in kind.types:
        raise InvalidInputError(
            kind.field, f"{path} holds a '{model_type}' model, not {kind.wanted}", kind.fix
        )
    return str(model_type)


def resolve_checkpoint(text: str, kind: CheckpointKind) -> tuple[str, str | None]:
    """(folder, its model_type) or (hub id, None: checked when loaded, as it may need a download)."""
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path), folder_model_type(path, kind)
    if path.exists():
        raise InvalidInputError(kind.field, f"{path} {kind.not_folder}", kind.fix)
    if is_hub_id(text):
        return text, None
    raise InvalidInputError(kind.field, f"{path} does not exist", kind.fix)


def hub_model_type(source: str, kind: CheckpointKind) -> str:
    """The ``model_type`` of a folder or hub id as transformers reads it (a hub id may download)."""
    from transformers import AutoConfig

    try:
        model_type = str(AutoConfig.from_pretrained(source).model_type)
    except (OSError, ValueError) as error:
        raise BackendError(
            f"{kind.field}: cannot read a model config from {source} ({error}); {kind.fix}"
        ) from error
    if model_type not in kind.types:
        raise InvalidInputError(
            kind.field, f"{source} holds a '{model_type}' model, not {kind.wanted}", kind.fix
        )
    return model_type


def default_device(device: str | torch.device | None = None) -> str | torch.device:
    """The device asked for, else the GPU when there is one, else the CPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class OnDevice:
    """The device and dtype of a tool's ``model`` (where its inputs must go)."""

    model: Any

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype
