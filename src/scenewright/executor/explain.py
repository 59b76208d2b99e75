"""Why an image looks as it does: per-object saliency maps read from the model itself.

The finished image is re-noised to the middle of the schedule and passed once through the
transformer with ConceptAttention (FLUX-class models: one concept per planned object plus
"background", maps from attention outputs, softmax over concepts) or, for SD3, with each object's
cross-attention normalised over the objects. Used by refine to check objects and by the agent
for the attention-map sheet.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from scenewright.arrays import to_numpy
from scenewright.backends.base import Backend
from scenewright.executor.attention import CaptureMaps, ConceptAttention, Edit, Sites, attention_engine
from scenewright.executor.composition import conditional_rows, instance_prompt, noun_tokens
from scenewright.executor.sampler import SamplingSettings, make_generator, sample
from scenewright.planner.plan import Plan

READ_FRACTION = 0.5  # re-noise the image to the middle of the schedule to read the maps


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


def object_maps(backend: Backend, image: Image.Image, plan: Plan, settings: SamplingSettings) -> torch.Tensor:
    """(objects + 1, rows, cols): per image token, a distribution over the objects and background."""
    clean = backend.encode_image(image_tensor(image), settings.height, settings.width)
    noise = backend.prepare_noise(1, settings.height, settings.width, make_generator(settings.seed))
    step = min(settings.steps - 1, round(READ_FRACTION * settings.steps))
    scheduler = backend.new_scheduler()
    backend.set_timesteps(scheduler, settings.steps, settings.height, settings.width)
    sigma = float(scheduler.sigmas[step])
    noisy = (1 - sigma) * clean + sigma * noise
    encoding = backend.encode_prompts([plan.global_prompt])
    row = conditional_rows(backend, settings)[0]
    if hasattr(backend.transformer, "single_transformer_blocks"):
        doubles = len(backend.transformer.transformer_blocks)
        late = range(doubles // 2, doubles)
        reader: Edit = ConceptAttention(
            concepts=concept_vectors(backend, plan), sites=Sites.make(double=late)
        )
    else:  # SD3 has no double-stream blocks: per-object cross-attention, normalised over objects
        tokens = [noun_tokens(encoding, 0, o.name) or [0] for o in plan.objects]
        reader = CaptureMaps(tokens=[t for group in tokens for t in group])
    with attention_engine(backend, [reader]) as engine:
        sample(
            backend, encoding, settings, hooks=[engine], latents=noisy, start_step=step, max_steps=step + 1,
            progress=False, decode=False,
        )  # fmt: skip
    if isinstance(reader, ConceptAttention):
        return reader.maps()[row].float().cpu()
    assert isinstance(reader, CaptureMaps)
    raw = reader.maps()[row].float().cpu()
    per_object, start = [], 0
    for group in tokens:
        per_object.append(raw[start : start + len(group)].mean(dim=0))
        start += len(group)
    stacked = torch.stack(per_object)
    background = torch.full_like(stacked[:1], float(stacked.mean()))
    both = torch.cat([stacked, background])
    return both / both.sum(dim=0, keepdim=True).clamp_min(1e-8)


def named_maps(maps: torch.Tensor, plan: Plan) -> dict[str, np.ndarray]:
    """``object_maps`` output keyed by a readable label ("1: red circle"), background last."""
    labels = [f"{i + 1}: {' '.join([*o.attributes, o.name])}" for i, o in enumerate(plan.objects)]
    return {label: to_numpy(maps[i]) for i, label in enumerate([*labels, "background"])}
