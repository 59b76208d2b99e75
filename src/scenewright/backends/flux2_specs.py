"""What FLUX.2 checkpoints take, before torch: refused options are one line, not a silent no-op.

FLUX.2 dev embeds its guidance and klein's step-distilled checkpoints ignore it, so neither has an
unconditional pass for a negative prompt to steer; only klein's base checkpoints guide with CFG.
No FLUX.2 model has a pooled text vector, so regional's per-box pooled vectors cannot apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from scenewright.backends.specs import ALIASES, BackendSpec
from scenewright.errors import InvalidInputError

FAMILY = "flux2"
# klein's base checkpoints: the FLUX.2 models that guide with CFG.
_CFG_IDS = {ALIASES["flux2-klein-base-4b"].source, ALIASES["flux2-klein-base-9b"].source}
_HUB_IDS = {spec.source for spec in ALIASES.values() if spec.family == FAMILY}


def guides_with_cfg(spec: BackendSpec) -> bool | None:
    """Whether the checkpoint guides with CFG (klein base), from its hub id or its folder's
    ``model_index.json``; None when neither says."""
    source = spec.source or ""
    if source in _HUB_IDS:
        return source in _CFG_IDS
    index = Path(source) / "model_index.json"
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("_class_name") == "Flux2KleinPipeline":
        return not bool(data.get("is_distilled", False))
    return False if data.get("_class_name") == "Flux2Pipeline" else None


def check_negative_prompt(spec: BackendSpec, negative_prompt: str) -> None:
    """Refuse a negative prompt on a FLUX.2 checkpoint without an unconditional pass."""
    if spec.family != FAMILY or not negative_prompt or guides_with_cfg(spec) is not False:
        return
    raise InvalidInputError(
        "negative-prompt",
        f"backend '{spec.name}' is guidance-distilled and has no unconditional pass to steer",
        "leave --negative-prompt out, or use --backend flux2-klein-base-4b (CFG)",
    )


def check_strategy_options(spec: BackendSpec, strategy: str) -> None:
    """Refuse strategy options a FLUX.2 model cannot run (per-box pooled vectors)."""
    if spec.family != FAMILY:
        return
    for part in strategy.split("+"):
        for item in part.split(":")[1:]:
            key, _, value = item.partition("=")
            if key.strip() == "pooled" and value.strip() not in ("", "scene"):
                raise InvalidInputError(
                    "strategy",
                    f"pooled={value.strip()} needs a pooled text vector, which '{spec.name}' (FLUX.2) has none of",
                    "use pooled=scene or leave the option out",
                )
