"""The attention engine: one joint-attention processor family that masks, biases, tempers and reads.

Strategies build edits (:class:`RegionMask`, :class:`AttentionBias`, :class:`Temperature`,
:class:`CaptureMaps`, :class:`ConceptAttention`, :class:`FeatureInjection`), install them with
:func:`attention_engine`, and pass the engine to the sampler as a hook; :class:`LatentPaste` covers
Stitch's latent paste.
"""

from scenewright.executor.attention.concept import ConceptAttention
from scenewright.executor.attention.edits import AttentionBias, CaptureMaps, Edit, RegionMask, Temperature
from scenewright.executor.attention.engine import AttentionEngine
from scenewright.executor.attention.inject import FeatureInjection
from scenewright.executor.attention.install import attention_engine, engine_processors, installed
from scenewright.executor.attention.masks import RegionLayout, mask_value, region_token_masks
from scenewright.executor.attention.schedules import Sites, constant, numina_delta, taca_gamma
from scenewright.executor.attention.stitch import LatentPaste, LatentRecorder

__all__ = [
    "AttentionBias",
    "AttentionEngine",
    "CaptureMaps",
    "ConceptAttention",
    "Edit",
    "FeatureInjection",
    "LatentPaste",
    "LatentRecorder",
    "RegionLayout",
    "RegionMask",
    "Sites",
    "Temperature",
    "attention_engine",
    "constant",
    "engine_processors",
    "installed",
    "mask_value",
    "numina_delta",
    "region_token_masks",
    "taca_gamma",
]
