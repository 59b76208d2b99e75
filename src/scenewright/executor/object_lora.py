"""A LoRA per object: an adapter's contribution scaled token by token.

A LoRA adds ``B(A(x)) * scaling`` to the output of each layer it wraps, on every token. A plan
object that names a LoRA (``"loras": [{"name": "outline", "scale": 1.0}]``) wants that addition on
its own tokens only: the image tokens of its boxes and the text tokens of its own prompt. PEFT
computes the addition in the adapter's ``lora_B`` linear, per token, so a forward hook there
multiplies it by a per-token scale (the object's scale on its tokens, 0 elsewhere) and the layer
then adds exactly the masked delta. Which tokens a layer sees follows from where it sits: FLUX
double blocks and SD3 joint blocks project the text (``add_*_proj``, ``to_add_out``,
``ff_context``) and the image (everything else) apart; FLUX single blocks see ``[text; image]``
(with regional's carried base image copy, ``[text; copy; image]``, the copy masked as the image).
Layers on the pooled vector (adaLN ``norm*.linear``, ``time_text_embed``) have no tokens: a bound
adapter adds nothing there.

The masks hold only while a strategy binds each object's text to its boxes: regional's inject
steps, Stitch's box pass and its hold steps (:func:`object_loras`, opened beside ``box_pooled``);
regional's plain finish keeps the boxes' image tokens (:func:`box_loras`).
Stitch's free pass draws each object alone in a batch row of its own: there the adapter applies to
its objects' rows, every token (:func:`row_loras`). Everywhere else (Stitch's finish, vanilla, NUMINA)
a bound adapter is inactive, so an object's LoRA never reaches another object's tokens. :func:`lora_render` wraps every render: it loads the
shipped LoRAs a plan names and switches bound adapters off for the render's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from scenewright.backends.base import Backend, PromptEncoding
from scenewright.backends.lora import activate, load_shipped, loaded_loras
from scenewright.errors import InvalidInputError
from scenewright.executor.attention.masks import box_to_tokens
from scenewright.executor.composition import plan_regions
from scenewright.executor.sampler import SamplingSettings
from scenewright.planner.plan import Plan

# Layer names that project the text stream apart from the image in FLUX double and SD3 joint blocks.
TEXT_LAYERS = ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "ff_context", "context_embedder")
# Blocks whose layers see the joint [text; image] sequence.
JOINT_BLOCKS = ("single_transformer_blocks",)


def plan_lora_names(plan: Plan) -> list[str]:
    """The adapters the plan's objects name, in first-named order."""
    names: list[str] = []
    for obj in plan.objects:
        names.extend(lora.name for lora in obj.loras if lora.name not in names)
    return names


def _bound(backend: Backend) -> tuple[str, ...]:
    # A stand-in backend (a test's, or none yet) has no adapters and nothing bound.
    bound: tuple[str, ...] = getattr(backend, "__dict__", {}).get("_lora_bound", ())
    return bound


@contextmanager
def lora_render(backend: Backend, plan: Plan) -> Iterator[None]:
    """For one render: the shipped LoRAs the plan names loaded, and every adapter an object names
    switched off outside its objects' tokens (nested renders, as auto's and refine's, restore the
    outer render's state)."""
    names = plan_lora_names(plan)
    outer = _bound(backend)
    if not names and not outer:
        yield
        return
    if names and backend.__dict__.get("_loras_fused"):
        raise InvalidInputError(
            "objects.loras", "the model's LoRAs are fused", "load them unfused to bind one"
        )
    for index, obj in enumerate(plan.objects):
        if obj.loras:
            load_shipped(backend, [lora.name for lora in obj.loras], f"objects[{index}].loras")
    backend.__dict__["_lora_bound"] = tuple(names)
    activate(backend, bound=names)
    try:
        yield
    finally:
        backend.__dict__["_lora_bound"] = outer
        activate(backend, bound=outer)


class _TokenScales:
    """Each bound adapter's per-token scale over the text (T,) and image (N,) tokens of one pass."""

    def __init__(self, text: dict[str, torch.Tensor], image: dict[str, torch.Tensor]) -> None:
        self.text, self.image = text, image
        self.cache: dict[tuple[str, str, int, torch.device, torch.dtype], torch.Tensor | None] = {}

    def scale(self, name: str, stream: str, length: int, like: torch.Tensor) -> torch.Tensor | None:
        """(length,) scales for a layer of ``stream`` seeing ``length`` tokens, or None when the
        call is not this pass's (another sequence through the same layers): the adapter adds nothing."""
        key = (name, stream, length, like.device, like.dtype)
        if key not in self.cache:
            text, image = self.text[name], self.image[name]
            found: torch.Tensor | None = None
            if stream == "text" and length == len(text):
                found = text
            elif stream == "image" and length == len(image):
                found = image
            elif stream == "joint" and length == len(text) + len(image):
                found = torch.cat([text, image])
            elif stream == "joint" and length == len(text) + 2 * len(image):
                found = torch.cat([text, image, image])  # regional's carried base image copy
            self.cache[key] = None if found is None else found.to(device=like.device, dtype=like.dtype)
        return self.cache[key]


def layer_stream(name: str) -> str:
    """Which tokens a transformer layer named ``name`` projects: "text", "image" or "joint"."""
    parts = name.split(".")
    if any(block in parts for block in JOINT_BLOCKS):
        return "joint"
    if any(part in TEXT_LAYERS for part in parts):
        return "text"
    return "image"


def _hook(scales: _TokenScales, name: str, stream: str) -> Any:
    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 3:  # the pooled vector's layers, convolutions: no tokens to bind
            return output * 0
        scale = scales.scale(name, stream, output.shape[1], output)
        if scale is None:
            return output * 0
        return output * scale[None, :, None]

    return hook


def token_scales(
    backend: Backend, plan: Plan, text_spans: list[tuple[int, int]], text_len: int, settings: SamplingSettings
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per bound adapter, the scale of each text token (its objects' prompt spans) and image token
    (its objects' boxes); 0 elsewhere. ``text_spans[r]`` is region r's prompt span."""
    grid = backend.token_grid(settings.height, settings.width)
    text: dict[str, torch.Tensor] = {}
    image: dict[str, torch.Tensor] = {}
    for region, (start, end) in zip(plan_regions(plan), text_spans, strict=False):
        for lora in plan.objects[region.object_index].loras:
            text.setdefault(lora.name, torch.zeros(text_len))
            image.setdefault(lora.name, torch.zeros(grid[0] * grid[1]))
            text[lora.name][start:end] = lora.scale
            image[lora.name][box_to_tokens(region.box, grid).flatten()] = lora.scale
    return text, image


@contextmanager
def object_loras(
    backend: Backend, plan: Plan, encoding: PromptEncoding, mask: Any, settings: SamplingSettings
) -> Iterator[None]:
    """While open, each adapter the plan's objects name adds its change on those objects' tokens
    only. ``mask`` is the pass's region mask: its first spans are the plan's regions' prompts."""
    with _bind(backend, plan, encoding, list(mask.text_spans), settings):
        yield


@contextmanager
def box_loras(
    backend: Backend, plan: Plan, encoding: PromptEncoding, settings: SamplingSettings
) -> Iterator[None]:
    """While open, each adapter the plan's objects name adds its change on the image tokens of
    those objects' boxes only: for a pass over the scene prompt (regional's finish), whose words
    every object shares. Switching the adapter off there let the model draw the last steps of a
    recoloured object back towards its prompt (``bench object-lora``)."""
    with _bind(backend, plan, encoding, [(0, 0)] * len(plan_regions(plan)), settings):
        yield


@contextmanager
def _bind(
    backend: Backend, plan: Plan, encoding: PromptEncoding, text_spans: list[tuple[int, int]],
    settings: SamplingSettings,
) -> Iterator[None]:  # fmt: skip
    names = [n for n in plan_lora_names(plan) if n in loaded_loras(backend)]
    if not names:
        yield
        return
    text, image = token_scales(backend, plan, text_spans, encoding.embeds.shape[1], settings)
    scales = _TokenScales(text, image)
    handles = []
    for layer_name, module in backend.transformer.named_modules():
        lora_b = getattr(module, "lora_B", None)
        if not isinstance(lora_b, torch.nn.ModuleDict):
            continue
        for name in names:
            if name in lora_b and name in text:
                handles.append(
                    lora_b[name].register_forward_hook(_hook(scales, name, layer_stream(layer_name)))
                )
    outer = _bound(backend)
    activate(backend, bound=outer, on=[n for n in names if n in text])
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        activate(backend, bound=outer)


def _row_hook(rows: torch.Tensor) -> Any:
    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        batch = output.shape[0]
        if batch % len(rows):  # not this pass's batch (nor its CFG double): nothing added
            return output * 0
        scale = rows.to(device=output.device, dtype=output.dtype).repeat(batch // len(rows))
        return output * scale.reshape(-1, *([1] * (output.dim() - 1)))

    return hook


@contextmanager
def row_loras(backend: Backend, plan: Plan, row_objects: list[int | None]) -> Iterator[None]:
    """While open, each adapter the plan's objects name adds its change to the batch rows drawing
    those objects (``row_objects[r]``: the plan object row r draws, None for the background), on
    every token of the row; a CFG batch's unconditional rows follow their conditional ones."""
    names = [n for n in plan_lora_names(plan) if n in loaded_loras(backend)]
    rows: dict[str, torch.Tensor] = {}
    for row, index in enumerate(row_objects):
        for lora in plan.objects[index].loras if index is not None else []:
            if lora.name in names:
                rows.setdefault(lora.name, torch.zeros(len(row_objects)))[row] = lora.scale
    if not rows:
        yield
        return
    handles = []
    for module in backend.transformer.modules():
        lora_b = getattr(module, "lora_B", None)
        if isinstance(lora_b, torch.nn.ModuleDict):
            handles += [lora_b[n].register_forward_hook(_row_hook(rows[n])) for n in rows if n in lora_b]
    outer = _bound(backend)
    activate(backend, bound=outer, on=list(rows))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        activate(backend, bound=outer)
