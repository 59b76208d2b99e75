"""``numina:pipeline=paper`` in the renderer: the edits read and bias what numina_paper's functions
compute on the same queries and keys, inside real sampling on tiny FLUX.1 and SD3.5 models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from builders import tiny_flux_pipeline, tiny_sd3_pipeline
from scenewright.backends.base import Backend
from scenewright.backends.flux import FluxBackend
from scenewright.backends.sd3 import SD3Backend
from scenewright.executor.attention import AttentionBias, Edit, Sites, attention_engine
from scenewright.executor.attention.schedules import Site
from scenewright.executor.composition import conditional_rows, noun_tokens
from scenewright.executor.numina import paper as numina_paper
from scenewright.executor.numina.paper import (
    BlockQueryKeys,
    CopiedInstanceBias,
    HeadSelfAttention,
    NounMap,
    bias_edits,
    cross_attention_map,
    one_site,
    paper_bias,
    reference_block,
    self_attention_maps,
)
from scenewright.executor.sampler import SamplingSettings, sample
from scenewright.executor.strategies import run_strategy
from scenewright.planner.count_layout_paper import head_score
from scenewright.planner.plan import Plan, PlanObject

PLAN = Plan(prompt="three red stars", objects=[PlanObject(name="star", count=3, attributes=["red"])])
SETTINGS = SamplingSettings(32, 32, steps=4, guidance=3.0, seed=5)


@pytest.fixture(scope="module", params=["flux", "sd3.5"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "flux":
        return FluxBackend(tiny_flux_pipeline(), max_sequence_length=16)
    return SD3Backend(tiny_sd3_pipeline(sd35=True), max_sequence_length=16)


@dataclass
class Recorder(Edit):
    """Keeps the canonical q, k, v and attention output of every site and step it is active at."""

    seen: dict[tuple[Site, int], tuple[torch.Tensor, ...]] = field(default_factory=dict)

    def observe(self, engine: Any, site: Site, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                output: torch.Tensor, text_len: int) -> None:  # fmt: skip
        self.seen[(site, engine.step)] = tuple(t.detach().clone() for t in (query, key, value, output))


def _layout(case: str) -> np.ndarray:
    """8 x 8 labels: two found instances, a removed one and a copy ("copy"), or only a removed
    instance and an added one with no found instance left ("circle")."""
    layout = np.zeros((8, 8), dtype=np.int64)
    layout[6:8, 0:2] = -1
    layout[4:6, 3:6] = 100
    if case == "copy":
        layout[0:2, 0:2] = 1
        layout[0:3, 5:8] = 2
    return layout


def test_paper_is_the_default_and_runs_end_to_end(backend: Backend) -> None:
    result = run_strategy("numina", backend, PLAN, SETTINGS)
    report = result.report
    assert report["pipeline"] == "paper" and report["reference_steps"] == 3  # step 20 of 50 -> 2 of 4
    block = reference_block(backend)
    assert report["reference_block"] == f"{block.kind}{block.index}"
    assert 0 <= report["head"] < len(result.artifacts["head_scores"])
    assert result.artifacts["layouts"][0].shape == backend.token_grid(32, 32)
    assert result.sample.images.shape[-2:] == (32, 32)
    assert np.isfinite(result.sample.images.numpy()).all()


def test_reference_edits_read_what_the_functions_compute(backend: Backend) -> None:
    encoding = backend.encode_prompts([PLAN.global_prompt])
    tokens = noun_tokens(encoding, 0, "star")
    row = conditional_rows(backend, SETTINGS)[0]
    block = reference_block(backend)
    sites = one_site((block.kind, block.index), steps=(1, 2))
    heads, noun, recorder = (
        HeadSelfAttention(row=row, sites=sites),
        NounMap(tokens=tokens, row=row, sites=sites),
        Recorder(sites=sites),
    )
    with attention_engine(backend, [heads, noun, recorder]) as engine:
        sample(backend, encoding, SETTINGS, hooks=[engine], progress=False, decode=False, max_steps=2)
    assert list(recorder.seen) == [((block.kind, block.index), 1)]
    query, key, _, _ = recorder.seen[((block.kind, block.index), 1)]
    text_len = query.shape[1] - 64  # an 8 x 8 token grid at 32 x 32 pixels
    q_img = query[row : row + 1, text_len:].transpose(1, 2)
    k_img = key[row : row + 1, text_len:].transpose(1, 2)
    k_txt = key[row : row + 1, :text_len].transpose(1, 2)
    maps = self_attention_maps(q_img, k_img).numpy()
    assert heads.scores == pytest.approx([head_score(m.astype(np.float64), 8, 8) for m in maps], rel=1e-5)
    assert heads.head == int(np.argmax(heads.scores))
    assert heads.attention is not None and noun.map is not None
    np.testing.assert_allclose(heads.attention, maps[heads.head], atol=1e-5)
    assert np.allclose(heads.attention.sum(axis=1), 1.0, atol=1e-5)  # softmax over image keys alone
    expected = cross_attention_map(q_img, k_txt, tokens).reshape(8, 8).numpy()
    np.testing.assert_allclose(noun.map, expected, atol=1e-5)


@pytest.mark.parametrize("case", ["copy", "circle"])
def test_the_bias_applied_is_paper_bias_on_each_blocks_own_queries_and_keys(
    backend: Backend, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = _layout(case)
    found = len(np.unique(layout[(layout >= 1) & (layout < 100)]))
    monkeypatch.setattr(numina_paper, "paper_layout", lambda sa, cross, count: (layout, found))
    recorder = Recorder(sites=Sites.make(steps=(2, 4)))
    result = run_strategy("numina", backend, PLAN, SETTINGS, edits=[recorder])
    assert result.report["copied_bias"] == (case == "copy") and not result.report["continued"]
    encoding = backend.encode_prompts([PLAN.global_prompt])
    tokens = noun_tokens(encoding, 0, "star")
    rows = list(conditional_rows(backend, SETTINGS))
    checked = 0
    for (_site, step), (query, key, value, output) in recorder.seen.items():
        batch, seq, _, dim = query.shape
        text_len = seq - 64
        bias = paper_bias(
            layout,
            tokens,
            query[rows, text_len:].transpose(1, 2),
            key[rows, :text_len].transpose(1, 2),
            step,
            4,
        )
        assert bias is not None  # delta is on at every step of 4 (the last just above 0.25)
        full = torch.zeros(batch, 1, seq, seq)
        full[rows, 0, text_len:, :text_len] = bias
        q, k, v = (t.transpose(1, 2) for t in (query, key, value))
        probs = torch.softmax(q @ k.transpose(-2, -1) * dim**-0.5 + full, dim=-1)
        torch.testing.assert_close(output, (probs @ v).transpose(1, 2), atol=1e-5, rtol=1e-5)
        checked += 1
    assert checked == 2 * len(backend.blocks())


def test_the_bias_touches_only_the_nouns_columns(backend: Backend) -> None:
    tokens = [3, 4]
    edits = bias_edits(backend, [(_layout("copy"), tokens)], (0,))
    shared = [e for e in edits if type(e) is AttentionBias]
    per_block = [e for e in edits if isinstance(e, CopiedInstanceBias)]
    taps = [e for e in edits if isinstance(e, BlockQueryKeys)]
    assert len(shared) == 1 and set(shared[0].maps) == set(tokens)
    assert len(per_block) == len(backend.blocks()) and len(taps) == 1
    generator = torch.Generator().manual_seed(0)
    query, key = (
        torch.randn(1, 10 + 64, 2, 16, generator=generator),
        torch.randn(1, 10 + 64, 2, 16, generator=generator),
    )
    edit = per_block[0]
    edit.update(query, key, 10, 1, 4)
    assert edit.buffer is not None
    written = edit.buffer.abs().sum(dim=(0, 1)).nonzero().flatten().tolist()
    assert written == tokens
    rows_written = edit.buffer.abs().sum(dim=(0, 2)).reshape(8, 8) != 0
    assert np.array_equal(rows_written.numpy(), _layout("copy") == 100)
    assert not bias_edits(backend, [(np.zeros((8, 8), dtype=np.int64), tokens)], (0,))  # nothing to change
