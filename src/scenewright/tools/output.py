"""Write results so that nothing is lost and every image can be reproduced.

Writes go to a temporary file in the target folder and are then moved into place, so a crash
never leaves a half-written file; a temporary file left by a writer that was killed is removed by
the next write or output check in that folder. Existing files are kept unless overwriting was asked for; if a
file appears between the up-front check and the write, the new result goes beside it under a
free name rather than being dropped.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from scenewright.errors import InvalidInputError, OutputExistsError
from scenewright.untrusted import load_json

METADATA_KEY = "scenewright"
# The text chunk A1111's web UI writes and civitai, image viewers and most UIs read.
PARAMETERS_KEY = "parameters"
# Every render is a flow-matching Euler integration (diffusers' FlowMatchEulerDiscreteScheduler);
# A1111 and Forge call that sampler "Euler".
SAMPLER_NAME = "Euler"


def check_free(paths: Iterable[Path], overwrite: bool) -> None:
    """Fail before any work if an output exists and may not be overwritten."""
    if overwrite:
        return
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise OutputExistsError(
            f"out: {', '.join(taken)} already exists; pass --overwrite or choose another --out folder"
        )


# A plan JSON is a few kilobytes; anything near this is not one (and /dev/zero never ends).
MAX_PLAN_FILE_BYTES = 1_000_000


def read_plan_file(path: Path) -> str:
    """The text of a plan file, refused in one line if it is not a regular file of at most
    ``MAX_PLAN_FILE_BYTES`` (read with that limit, so a growing or endless file stops too)."""
    if not path.is_file():
        raise InvalidInputError("load", f"{path} is not a regular file", "give a plan.json file")
    with path.open("rb") as handle:
        data = handle.read(MAX_PLAN_FILE_BYTES + 1)
    if len(data) > MAX_PLAN_FILE_BYTES:
        raise InvalidInputError(
            "load", f"{path} is larger than {MAX_PLAN_FILE_BYTES:,} bytes", "give a plan.json file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError("load", f"{path} is not UTF-8 text", "give a plan.json file") from error


def check_output_folder(value: str | Path) -> None:
    """Fail before any work when ``value`` cannot hold outputs: empty, a file, under a file, or in
    a place where no file can be created (probed with a temporary file in the nearest existing
    folder, which also catches read-only mounts and /proc, where permission bits say nothing)."""
    if str(value).strip() == "":
        raise InvalidInputError("out", "is empty", "pass a folder, e.g. --out out/mine")
    folder = Path(value)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError("out", f"{folder} is a file", "pass a folder, e.g. --out out/mine")
    clean_stale_temps(folder)
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(
            "out", f"{existing} is a file, so {folder} cannot be created", "pass another --out folder"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InvalidInputError(
            "out", f"cannot write in {existing} ({error.strerror or error})", "pass a folder you can write to"
        ) from error


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _free_name(path: Path) -> Path:
    for index in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{index}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputExistsError(f"out: no free file name beside {path}")


# Our temporary files: ".NAME.PID.RANDOM.tmp", the writer's process id inside, so that a later
# command can tell a temp whose writer was killed (kill -9, power loss) from one being written now.
_TEMP = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or no pid: not ours to judge
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files of our naming in ``folder`` whose writer is no longer running;
    the removed paths. A write that died leaves nothing once the next command touches the folder."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():  # a staged folder (see staged_folder)
                shutil.rmtree(entry)
            elif entry.is_file():
                entry.unlink()
            else:
                continue
            removed.append(entry)
        except OSError:
            pass
    return removed


@dataclass
class StagedFolder:
    """Where a folder's files are written before it exists under its own name."""

    path: Path  # the staging folder: write here
    final: Path  # the name it gets when the block ends
    keep: bool = True  # set False to drop everything written (a cancelled or failed render)


@contextmanager
def staged_folder(final: Path, overwrite: bool = False) -> Iterator[StagedFolder]:
    """A folder written whole or not at all: the block writes into a hidden staging folder of our
    temp naming (so a killed writer's is removed later by :func:`clean_stale_temps`), which is
    renamed to ``final`` when the block ends, and removed if it raises or clears ``keep``.

    When ``final`` already exists its files are moved in one by one instead (replaced only with
    ``overwrite``; otherwise a taken name gets a free one beside it, as single files do)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(final.parent)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp"))
    stage = StagedFolder(staging, final)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not stage.keep:
        shutil.rmtree(staging, ignore_errors=True)
        return
    try:
        os.rename(staging, final)  # atomic, and refused when final exists (unless it is empty)
        return
    except OSError:
        if not final.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
            raise
    for item in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = final / item.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        _place(item, target, overwrite)
    shutil.rmtree(staging, ignore_errors=True)


def _place(tmp: Path, path: Path, overwrite: bool) -> Path:
    """Move a finished temporary file to ``path`` (or a free name beside it); the path written."""
    if overwrite:
        os.replace(tmp, path)
        return path
    target = path
    try:
        while True:
            try:
                os.link(tmp, target)  # fails if target exists: never replaces someone's file
                return target
            except FileExistsError:
                target = _free_name(path)
    finally:
        tmp.unlink(missing_ok=True)


# Writes staged by ``write_together``: (temporary file, final path, overwrite).
_STAGED: ContextVar[list[tuple[Path, Path, bool]] | None] = ContextVar("staged_writes", default=None)


@contextmanager
def write_together() -> Iterator[None]:
    """Inside this block every :func:`atomic_write_bytes` writes only its temporary file; all of
    them are moved into place together when the block ends, and none if it fails. An output set
    (image, plan, overlay, attention) is then whole or absent: the slow part (rendering the
    overlay) happens before the first final name appears."""
    staged: list[tuple[Path, Path, bool]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _STAGED.reset(token)
    for tmp, path, overwrite in staged:
        _place(tmp, path, overwrite)


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; return the path actually written (inside
    :func:`write_together`, the path it will have)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    staged = _STAGED.get()
    if staged is None:
        return _place(tmp, path, overwrite)
    target = path if overwrite or not path.exists() else _free_name(path)
    staged.append((tmp, target, overwrite))
    return target


def _a1111_value(value: object) -> str:
    """A value as A1111 writes it in the key-value line: as is, or JSON-quoted when it holds a
    comma, colon or newline that would split the line."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def a1111_parameters(metadata: dict[str, Any]) -> str | None:
    """The settings of ``metadata`` in A1111's ``parameters`` form, so that other tools read them:
    the prompt, ``Negative prompt: ...`` when there is one, then ``Steps: N, Sampler: ..., CFG
    scale: G, Seed: S, Size: WxH, Model: NAME, Strategy: ...``. None when the metadata holds no
    settings (an overlay of someone else's call). Our JSON beside it stays the full record."""
    settings = metadata.get("settings")
    if not isinstance(settings, dict):
        return None
    plan = _mapping(metadata.get("plan"))
    lines = [_one_line(str(plan.get("prompt") or metadata.get("request") or ""))]
    negative = _one_line(str(settings.get("negative_prompt") or ""))
    if negative:
        lines.append(f"Negative prompt: {negative}")
    backend = _mapping(metadata.get("backend"))
    width, height = settings.get("width"), settings.get("height")
    fields = {
        "Steps": settings.get("steps"),
        "Sampler": SAMPLER_NAME,
        "CFG scale": settings.get("guidance"),
        "Seed": settings.get("seed"),
        "Size": f"{width}x{height}" if width is not None and height is not None else None,
        "Model": backend.get("name"),
        "Strategy": metadata.get("strategy") or None,
    }
    lines.append(
        ", ".join(f"{key}: {_a1111_value(value)}" for key, value in fields.items() if value is not None)
    )
    return "\n".join(lines)


def png_bytes(image: Image.Image, metadata: dict[str, Any]) -> bytes:
    """Encode ``image`` as PNG with ``metadata`` as JSON in a text chunk, and its settings in
    A1111's ``parameters`` chunk beside it (:func:`a1111_parameters`)."""
    info = PngInfo()
    info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    parameters = a1111_parameters(metadata)
    if parameters is not None:
        info.add_text(PARAMETERS_KEY, parameters)  # tEXt, or iTXt (UTF-8) when not Latin-1, as A1111
    if "plan" in metadata:
        info.add_text("prompt", str(metadata["plan"].get("prompt", "")))
    info.add_text("Software", f"scenewright {metadata.get('version', '')}".strip())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(image: Image.Image, path: Path, metadata: dict[str, Any], overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, png_bytes(image, metadata), overwrite)


def save_json(data: Any, path: Path, overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode(), overwrite)


def read_png_metadata(path: str | Path) -> dict[str, Any]:
    """The scenewright metadata of a PNG written by :func:`save_png`."""
    with Image.open(path) as image:
        text = image.text.get(METADATA_KEY) if hasattr(image, "text") else None
    if text is None:
        raise ValueError(f"{path} carries no scenewright metadata")
    data = load_json(text, "image", "give a PNG written by scenewright")
    if not isinstance(data, dict):
        raise InvalidInputError(
            "image", "its metadata is not a JSON object", "give a PNG written by scenewright"
        )
    return data
