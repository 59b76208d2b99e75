"""NUMINA's reference fixtures: the authors' model-free functions on seeded attention inputs.

Their code runs on Wan2.1, but the functions that turn one layer's attention into a head choice,
a count layout and a logit bias take only tensors: ``numina_self_attention_extract`` and
``numina_cross_attention_extract`` (wan/modules/attention.py: per-head self-attention scored by
``head_selection.score_sa_head_gpu``, the noun's cross-attention averaged over heads),
``layout.construct_layout_single_frame`` and ``refine_layout_single_frame``, and
``modulation.build_modulation_data`` / ``build_cross_attention_bias``. This module feeds them the
inputs of ``tests/reference_numina_inputs.py`` and writes what they return.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from reference import checkout_commit
from reference_numina_inputs import CASES, GRID, HEADS, NOUN_TOKENS, TEXT_LEN, make_inputs, target_count

# Steps at which the bias is recorded: the ramp, the switch from +/-delta to the 0.25 floor, and
# the last modulated step and the first unmodulated one of their 50-step clock.
BIAS_STEPS = (0, 20, 25, 26, 28, 30, 44, 45)
REPOSITORY = "https://github.com/H-EmbodVis/NUMINA"
COMMIT = "18381ad6b05ba445b20e4c25ff09729d8cb6cdb2"
SOURCE = """# NUMINA reference fixtures

Data written by running the authors' code; none of their code is in this repository.

- Repository: {repository}
- Commit: {commit}
- Command: `python scripts/reference_fixtures.py numina /path/to/NUMINA` (a checkout or
  `git archive` export of that commit)
- Inputs: `tests/reference_numina_inputs.py` (seeded image queries and keys on a 16 x 16 token
  grid, 4 heads; noun tokens {nouns}); cases {cases}.
- Functions run: `wan/modules/attention.py` `numina_self_attention_extract` (head choice) and
  `numina_cross_attention_extract` (the noun's map, mean over heads), `numina/layout.py`
  `_cluster_self_attention`, `_build_focus_mask`, `construct_layout_single_frame`,
  `refine_layout_single_frame`, `numina/modulation.py` `build_modulation_data` and
  `build_cross_attention_bias` at steps {steps} of their 50.
- Each file: `head_lowrank` (their extraction as published, `torch.svd_lowrank` after
  `torch.manual_seed(0)`), `head_randomized` and `scores` (the same extraction with
  `torch.svd_lowrank` replaced by scikit-learn's `randomized_svd(random_state=0)`, the projection
  of their `pca_to_grayscale_cpu`), `gray` (their `pca_to_grayscale_cpu` per head), `cross`,
  `clusters`, `focus`, `layout`, `found`, `refined` (on the `head_randomized` head's map), and
  `bias` (steps x image tokens x noun tokens; they write no other column).

Adaptations:
1. `wan/modules/attention.py` is loaded by file path (importing their `wan` package loads the
   whole video model); the file itself is unchanged.
2. For `head_randomized` and `scores`, `torch.svd_lowrank` is swapped for scikit-learn's seeded
   randomized SVD while their extraction runs (their GPU path otherwise draws its random start
   from torch's global generator).
3. Tensors are given on the CPU; their `torch.cuda.empty_cache()` calls do nothing there.
"""


def _load(checkout: Path, name: str, relative: str) -> ModuleType:
    """Import one file of their repository by path (their ``wan`` package imports the whole video
    model on import; the file itself needs only torch)."""
    spec = importlib.util.spec_from_file_location(name, checkout / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _exact_svd_lowrank(
    a: torch.Tensor, q: int = 6, niter: int = 2, M: Any = None
) -> tuple[torch.Tensor, ...]:
    """sklearn's seeded randomized SVD in place of ``torch.svd_lowrank`` (whose random start draws
    from torch's global generator): the scores their GPU path gives with the projection their CPU
    path (``pca_to_grayscale_cpu``) uses."""
    from sklearn.utils.extmath import randomized_svd

    u, s, vt = randomized_svd(a.double().numpy(), n_components=q, random_state=0)
    return torch.from_numpy(u).float(), torch.from_numpy(s).float(), torch.from_numpy(vt.T).float()


def _self_attention(inputs: Any, head: int) -> torch.Tensor:
    """One head's image self-attention probabilities (N, N), as their extraction computes them."""
    scale = inputs.self_q.shape[-1] ** -0.5
    return torch.softmax(inputs.self_q[0, head] @ inputs.self_k[0, head].T * scale, dim=-1)


def _case(
    attention: ModuleType,
    head_selection: ModuleType,
    config_module: ModuleType,
    layout: ModuleType,
    modulation: ModuleType,
    case: str,
) -> dict[str, torch.Tensor]:
    config = config_module.NuminaConfig()
    inputs = make_inputs(case)
    n = GRID * GRID
    out: dict[str, torch.Tensor] = {}
    # Head selection, as their self-attention extraction does it ([B, L, N, D] inputs), once with
    # their torch.svd_lowrank (seeded) and once with sklearn's seeded randomized SVD.
    q = inputs.self_q.transpose(1, 2)
    k = inputs.self_k.transpose(1, 2)
    for label, patched in (("lowrank", False), ("randomized", True)):
        storage: dict[Any, Any] = {"_H": GRID, "_W": GRID}
        original = torch.svd_lowrank
        if patched:
            torch.svd_lowrank = _exact_svd_lowrank  # type: ignore[assignment]
        try:
            torch.manual_seed(0)
            attention.numina_self_attention_extract(q, k, k, n, 1, n, storage, numina_config=config)
            if patched:  # deterministic: the scores their extraction compared
                maps = [_self_attention(inputs, h) for h in range(HEADS)]
                scores = [head_selection.score_sa_head_gpu(m, GRID, GRID, config) for m in maps]
                out["scores"] = torch.tensor(scores, dtype=torch.float64)
        finally:
            torch.svd_lowrank = original
        head, sa_map = storage["self_attn"][0]
        out[f"head_{label}"] = torch.tensor([head])
    grays = [head_selection.pca_to_grayscale_cpu(_self_attention(inputs, h).numpy()) for h in range(HEADS)]
    out["gray"] = torch.from_numpy(np.stack(grays)).float()
    # The noun's cross-attention map: mean over heads of the softmax over text keys, averaged
    # over the noun's tokens.
    storage = {"_H": GRID, "_W": GRID}
    cq = inputs.cross_q.transpose(1, 2)
    ck = inputs.cross_k.transpose(1, 2)
    attention.numina_cross_attention_extract(
        cq,
        ck,
        ck,
        n,
        storage,
        token_indices_per_noun={"noun": list(NOUN_TOKENS)},
        num_frames=1,
        tokens_per_frame=n,
    )
    cross = storage["cross_attn"]["noun"][0][1]
    out["cross"] = torch.from_numpy(np.asarray(cross)).float()
    # Layout on the selected head's map (the randomized-SVD selection; the test checks both agree).
    clusters = layout._cluster_self_attention(sa_map, GRID, GRID, config)
    focus = layout._build_focus_mask(cross, config)
    found_layout, found = layout.construct_layout_single_frame(sa_map, cross, GRID, GRID, config)
    refined, _ = layout.refine_layout_single_frame(found_layout, found, target_count(case), 0, None, config)
    out["clusters"] = torch.from_numpy(clusters.reshape(GRID, GRID).astype(np.int64))
    out["focus"] = torch.from_numpy(focus.astype(np.uint8))
    out["layout"] = torch.from_numpy(found_layout.astype(np.int64))
    out["found"] = torch.tensor([found])
    out["refined"] = torch.from_numpy(refined.astype(np.int64))
    out["bias"] = _biases(config_module, modulation, config, refined, cq.transpose(1, 2), ck.transpose(1, 2))
    return out


def _biases(
    config_module: ModuleType,
    modulation: ModuleType,
    config: Any,
    refined: np.ndarray,
    q: torch.Tensor,
    k: torch.Tensor,
) -> torch.Tensor:
    """Their bias at each of ``BIAS_STEPS`` (zeros where they build none), (steps, L_q, nouns):
    only the noun's columns, since they write no other (the test checks ours writes none)."""
    target = config_module.NuminaTarget(noun="noun", target_count=0, token_indices=list(NOUN_TOKENS))
    data = modulation.build_modulation_data({"noun": [refined]}, {"noun": target}, 1, GRID, GRID, config)
    biases = []
    for step in BIAS_STEPS:
        bias = modulation.build_cross_attention_bias(q, k, data, step)
        biases.append(torch.zeros(GRID * GRID, TEXT_LEN) if bias is None else bias[0, 0])
    return torch.stack(biases)[:, :, list(NOUN_TOKENS)].contiguous()


def generate(authors_checkout: Path, out_dir: Path) -> None:
    """Run their functions on every case and write one safetensors file per case."""
    sys.path.insert(0, str(authors_checkout))
    config_module = importlib.import_module("numina.config")
    head_selection = importlib.import_module("numina.head_selection")
    layout = importlib.import_module("numina.layout")
    modulation = importlib.import_module("numina.modulation")
    attention = _load(authors_checkout, "numina_wan_attention", "wan/modules/attention.py")
    for case, *_ in CASES:
        tensors = _case(attention, head_selection, config_module, layout, modulation, case)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / f"{case}.safetensors"))
    commit = checkout_commit(authors_checkout)
    if commit.startswith("unknown"):
        commit = ""
    if commit and commit != COMMIT:
        print(f"warning: the checkout is at {commit}, the fixtures record {COMMIT}")
    text = SOURCE.format(
        repository=REPOSITORY,
        commit=commit or COMMIT,
        nouns=list(NOUN_TOKENS),
        cases=", ".join(f"{name} (count {count})" for name, _, _, count in CASES),
        steps=", ".join(map(str, BIAS_STEPS)),
    )
    (out_dir / "SOURCE.md").write_text(text)
