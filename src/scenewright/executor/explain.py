"""Why an image looks as it does: per-object saliency maps read from the model itself.

The finished image is re-noised to a point of the schedule and passed once through the
transformer, and each planned object's map is read in one of two ways (:class:`MapReading`):
ConceptAttention (one concept per object plus "background", maps from attention outputs, softmax
over concepts; the default on FLUX-class models) or the cross-attention of image queries on the
object's own noun tokens in the prompt (SD3's default, and the embedded models'). Which reads a
model best is measured by ``scenewright bench concept-maps``; a model folder can name its reading
under ``"maps"`` in its ``strategy_defaults.json``; ``concept_inputs="paper"`` reads ConceptAttention
with its authors' inputs (docs/parity.md). Each read gives two views (:class:`ObjectMaps`):
the objects' own maps, for the agent's attention sheet, and a per-token ownership, for refine's
checks. The prompt read is the scene prompt the model understands (``scene_prompt``): the plan's
global prompt on FLUX and SD3, its objects named plainly on a model that never learned layout
words, where a relation's repeated noun ("... and a red circle below the star") pulled an object's
map away from it (tiny16's worst object: 0.19x inside/outside with the relation sentence, 2.52x
with the objects named; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from scenewright.arrays import to_numpy
from scenewright.backends.base import Backend, PromptEncoding
from scenewright.errors import InvalidInputError
from scenewright.executor.attention import CaptureMaps, ConceptAttention, Edit, Sites, attention_engine
from scenewright.executor.composition import conditional_rows, instance_prompt, noun_tokens, scene_prompt
from scenewright.executor.options import require_choice
from scenewright.executor.sampler import SamplingSettings, make_generator, sample
from scenewright.planner.plan import Plan, PlanObject

READ_FRACTION = 0.5  # re-noise the image to the middle of the schedule to read the maps
READERS = ("concept", "cross")
BLOCK_CHOICES = ("late", "double", "all")
CONCEPT_INPUTS = ("scene", "paper")
# ConceptAttention's code reads FLUX.1's double blocks 15-18 of 19 (the last 4/19 of them) at
# step 2 of a 4-step schedule.
PAPER_BLOCK_SHARE = 4 / 19
PAPER_READ_STEP, PAPER_READ_STEPS = 2, 4
MAPS_KEY = "maps"  # where a model folder's strategy_defaults.json names its reading
# The cross reader's maps lose this quantile of themselves (see ``without_floor``): a noun can
# draw attention from every background token, a flat floor over the whole image (tiny16's stars:
# a third of their peak), and the floor says nothing about where the object is.
FLOOR_QUANTILE = 0.25


@dataclass(frozen=True)
class MapReading:
    """How the per-object maps are read from a model.

    ``reader``: "concept" (ConceptAttention) or "cross" (cross-attention on the objects' nouns).
    ``blocks``: "late" (the later half of the double-stream or joint blocks, as ConceptAttention's
    paper reads), "double" (every double-stream or joint block; FLUX's single-stream blocks left
    out) or "all". ``read_fraction``: where in the schedule the image is re-noised to. ``floor``:
    the quantile of each cross-attention map taken off it (0 keeps the raw attention;
    ConceptAttention's shares, already a softmax over the concepts, are left as they are).
    ``concept_inputs`` (concept reader only): "scene" (each object's noun token inside its own
    phrase, "a red circle"; the concept stream modulated like the image, by the scene's pooled
    vector and guidance; ``blocks`` and ``read_fraction`` as given) or "paper" (ConceptAttention's
    code: the first token of the bare word, "circle"; a zero pooled vector and guidance 0 for the
    concept stream; the last 4/19 of the double blocks, 15-18 of 19 on FLUX.1, at least one; read
    at step 2 of a 4-step schedule. These replace ``blocks`` and ``read_fraction``).
    """

    reader: str = "concept"
    blocks: str = "late"
    read_fraction: float = READ_FRACTION
    floor: float = FLOOR_QUANTILE
    concept_inputs: str = "scene"

    def __post_init__(self) -> None:
        require_choice("maps.reader", self.reader, READERS)
        require_choice("maps.blocks", self.blocks, BLOCK_CHOICES)
        require_choice("maps.concept_inputs", self.concept_inputs, CONCEPT_INPUTS)
        if self.concept_inputs == "paper" and self.reader != "concept":
            raise InvalidInputError(
                "maps.concept_inputs", "paper inputs are ConceptAttention's", "use reader concept"
            )
        if not 0 <= self.floor < 1:
            raise InvalidInputError(
                "maps.floor", f"{self.floor} is not a quantile below the top", "use a value in [0, 1)"
            )
        if not 0 <= self.read_fraction < 1:
            raise InvalidInputError(
                "maps.read_fraction",
                f"{self.read_fraction} is not a point of the schedule",
                "use a value in [0, 1)",
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MapReading:
        """From a JSON object, naming any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInputError(
                "maps", f"unknown option {unknown[0]!r}", f"use some of {', '.join(sorted(known))}"
            )
        return cls(**options)


def map_reading(backend: Backend) -> MapReading:
    """The model's own reading if its folder names one, else its family's default."""
    tuned = backend.strategy_defaults.get(MAPS_KEY)
    if tuned:
        return MapReading.from_options(tuned)
    if hasattr(backend.transformer, "single_transformer_blocks"):
        return MapReading()
    return MapReading(reader="cross", blocks="all")  # SD3: no double-stream blocks to carry concepts


def reading_sites(backend: Backend, blocks: str) -> Sites:
    """The blocks a reading averages over, on FLUX-class (double/single) or SD3 (joint) models;
    ``blocks`` is one of BLOCK_CHOICES or "paper" (:func:`paper_blocks`)."""
    transformer = backend.transformer
    flux = hasattr(transformer, "single_transformer_blocks")
    count = sum(1 for block in backend.blocks() if block.kind in ("double", "joint"))
    if blocks == "all":
        return Sites.make()
    chosen = {"late": range(count // 2, count), "paper": paper_blocks(count)}.get(blocks, range(count))
    return Sites.make(double=chosen, single=[]) if flux else Sites.make(joint=chosen)


def paper_blocks(count: int) -> range:
    """ConceptAttention's layers scaled to ``count`` double blocks: the last 4/19 of them, at least
    one (15-18 of 19; 8-9 of 10; the last of 2)."""
    return range(count - max(1, round(PAPER_BLOCK_SHARE * count)), count)


def image_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].float() / 255


def concept_vectors(backend: Backend, plan: Plan) -> torch.Tensor:
    """One contextual token per object (its noun in "a red circle"), plus "background"."""
    prompts = [instance_prompt(o) for o in plan.objects] + ["background"]
    encoding = backend.encode_prompts(prompts)
    vectors = []
    for row, name in enumerate([o.name for o in plan.objects] + ["background"]):
        tokens = noun_tokens(encoding, row, name)
        position = tokens[-1] if tokens else 1
        vectors.append(encoding.embeds[row, position])
    return torch.stack(vectors)


def paper_concept_vectors(backend: Backend, plan: Plan) -> torch.Tensor:
    """ConceptAttention's concepts: each object's bare noun ("circle") and "background", encoded
    alone, and the first token of the word (on T5 the first token; a tokenizer that starts with a
    BOS token gives the one after it)."""
    names = [o.name for o in plan.objects] + ["background"]
    encoding = backend.encode_prompts(names)
    vectors = []
    for row, name in enumerate(names):
        tokens = noun_tokens(encoding, row, name)
        vectors.append(encoding.embeds[row, tokens[0] if tokens else 0])
    return torch.stack(vectors)


@dataclass
class ObjectMaps:
    """One image's per-object maps, as read and as a per-token distribution.

    ``attention`` (objects, rows, cols) is each object's own map as the reading gives it (the
    attention on its noun, or ConceptAttention's share): what the attention sheet shows and what
    ``bench concept-maps`` scores. ``ownership`` (objects + 1, rows, cols) is, per image token, a
    distribution over the objects and the background: what refine's checks take the argmax of.
    """

    attention: torch.Tensor
    ownership: torch.Tensor


def without_floor(maps: torch.Tensor, quantile: float) -> torch.Tensor:
    """Each (rows, cols) map less its own ``quantile`` over the image, clamped at zero.

    The attention on a noun is a softmax over every key, so background tokens give each noun some
    share; on tiny16 a star's noun takes a flat third of its peak from the whole background, and
    its map read 2.4x inside its box against 17x for the median object. Objects fill well under
    three quarters of a composed image, so the lower quartile is that floor; taking it off keeps
    each map's order (the same tokens rank highest) and only removes the flat part.
    """
    if quantile <= 0:
        return maps
    floors = torch.quantile(maps.flatten(1).float(), quantile, dim=1)
    return (maps - floors[:, None, None].to(maps.dtype)).clamp_min(0)


def object_tokens(encoding: PromptEncoding, obj: PlanObject) -> list[int]:
    """The tokens of ``obj``'s noun in the prompt, only where its attributes name it when they do:
    in "a red circle and a blue circle" each circle gets its own "circle"."""
    nouns = noun_tokens(encoding, 0, obj.name)
    if obj.attributes:
        named = set(encoding.tokens_for(0, " ".join([*obj.attributes, obj.name])))
        own = [token for token in nouns if token in named]
        if own:
            return own
    return nouns or [0]


def read_object_maps(
    backend: Backend,
    image: Image.Image,
    plan: Plan,
    settings: SamplingSettings,
    reading: MapReading | None = None,
) -> ObjectMaps:
    """Both views of ``image``'s maps; ``reading`` defaults to the model's (:func:`map_reading`)."""
    reading = reading or map_reading(backend)
    paper = reading.concept_inputs == "paper"
    clean = backend.encode_image(image_tensor(image), settings.height, settings.width)
    noise = backend.prepare_noise(1, settings.height, settings.width, make_generator(settings.seed))
    step = min(settings.steps - 1, round(reading.read_fraction * settings.steps))
    if paper:  # the point of the schedule their code reads, whatever the render's step count
        settings, step = replace(settings, steps=PAPER_READ_STEPS), PAPER_READ_STEP
    scheduler = backend.new_scheduler()
    backend.set_timesteps(scheduler, settings.steps, settings.height, settings.width)
    sigma = float(scheduler.sigmas[step])
    noisy = (1 - sigma) * clean + sigma * noise
    encoding = backend.encode_prompts([scene_prompt(backend, plan)])
    row = conditional_rows(backend, settings)[0]
    sites = reading_sites(backend, "paper" if paper else reading.blocks)
    if reading.reader == "concept":
        if not hasattr(backend.transformer, "single_transformer_blocks"):
            raise InvalidInputError(
                "maps.reader", "ConceptAttention needs double-stream blocks", "use reader cross"
            )
        concepts = paper_concept_vectors(backend, plan) if paper else concept_vectors(backend, plan)
        reader: Edit = ConceptAttention(
            concepts=concepts, sites=sites, modulation="paper" if paper else "scene"
        )
    else:
        tokens = [object_tokens(encoding, o) for o in plan.objects]
        reader = CaptureMaps(tokens=[t for group in tokens for t in group], sites=sites)
    with attention_engine(backend, [reader]) as engine:
        sample(
            backend, encoding, settings, hooks=[engine], latents=noisy, start_step=step, max_steps=step + 1,
            progress=False, decode=False,
        )  # fmt: skip
    if isinstance(reader, ConceptAttention):
        shares = reader.maps()[row].float().cpu()
        return ObjectMaps(attention=shares[: len(plan.objects)], ownership=shares)
    assert isinstance(reader, CaptureMaps)
    raw = reader.maps()[row].float().cpu()
    per_object, start = [], 0
    for group in tokens:
        per_object.append(raw[start : start + len(group)].mean(dim=0))
        start += len(group)
    stacked = torch.stack(per_object)
    own_maps = without_floor(stacked, reading.floor)
    # The background's share is a constant, the mean attention on the nouns: a token belongs to
    # an object only where that object's attention stands out from the average.
    background = torch.full_like(stacked[:1], float(stacked.mean()))
    both = torch.cat([stacked, background])
    return ObjectMaps(attention=own_maps, ownership=both / both.sum(dim=0, keepdim=True).clamp_min(1e-8))


def named_maps(maps: ObjectMaps, plan: Plan) -> dict[str, np.ndarray]:
    """The sheet's maps keyed by a readable label ("1: red circle"): each object's attention, then
    the background's share of the ownership."""
    labels = [f"{i + 1}: {' '.join([*o.attributes, o.name])}" for i, o in enumerate(plan.objects)]
    named = {label: to_numpy(maps.attention[i]) for i, label in enumerate(labels)}
    named["background"] = to_numpy(maps.ownership[-1])
    return named
