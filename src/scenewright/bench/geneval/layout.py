"""GenEval's folder layout and the record that ties a folder to the settings that wrote it.

``DIR/NNNNN/metadata.jsonl`` holds prompt NNNNN's metadata line (GenEval's reader ``json.load``s
it) and ``DIR/NNNNN/samples/KKKKK.png`` its samples, five digits as GenEval's own generator
writes them. ``DIR/scenewright-run.json`` records the settings; a folder written with other
settings is refused. A prompt that failed leaves ``DIR/NNNNN/error.json`` (GenEval's reader
looks at nothing but the two above).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from scenewright.errors import InvalidInputError

RUN_FILE = "scenewright-run.json"
ERROR_FILE = "error.json"


def prompt_dir(out: Path, index: int) -> Path:
    return out / f"{index:0>5}"


def sample_path(out: Path, index: int, sample: int) -> Path:
    return prompt_dir(out, index) / "samples" / f"{sample:05}.png"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create_exclusive(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless it exists; whether this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(tmp, path)  # atomic, and never replaces a file another rank wrote first
            return True
        except FileExistsError:
            return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def claim(out: Path, record: dict[str, Any], command: str) -> None:
    """Tie ``out`` to ``record``, or refuse it when an earlier run wrote it with other settings."""
    path = out / RUN_FILE
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if create_exclusive(path, text):
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        previous = None
    if not isinstance(previous, dict):
        raise InvalidInputError(
            "out", f"{path} is not a scenewright run record", "choose another --out folder"
        )
    changed = [k for k in sorted(set(record) | set(previous)) if record.get(k) != previous.get(k)]
    if changed:
        first = changed[0]
        raise InvalidInputError(
            "out",
            f"{out} was written by {command} with other settings ({first}: {previous.get(first)!r}, "
            f"now {record.get(first)!r})",
            "rerun with the same settings to resume, or choose another --out folder",
        )
