"""Training scales with the machine without changing what it learns.

Render workers hand out exactly the batches of one process, a run interrupted with workers and
resumed ends where an uninterrupted one does, checkpoints load on any device, and flags that
cannot run here are refused in one line before any work.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import scenewright.toyworld.train as train_module
from scenewright.backends.tiny import TinyConfig
from scenewright.toyworld.batches import BatchStream, RenderedBatch, SceneRecipe
from scenewright.toyworld.train import (
    TrainConfig,
    Trainer,
    _batch,
    noise_seed,
    resolve_device,
    tokens_from_images,
    training_command,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, heads=2, head_dim=16, text_width=32)
SMALL_FLAGS = ["--model-double-blocks", "1", "--model-single-blocks", "1", "--model-text-layers", "1",
               "--model-heads", "2", "--model-head-dim", "16", "--model-text-width", "32"]  # fmt: skip


def _cfg(out: Path, steps: int, **extra: Any) -> TrainConfig:
    fields: dict[str, Any] = {"batch": 4, "save_every": 2, "log_every": 1, "warmup": 2, "device": "cpu",
                              "simple_fraction": 0.3, "empty_fraction": 0.1}  # fmt: skip
    return TrainConfig(out=str(out), steps=steps, **{**fields, **extra})


def test_two_workers_hand_out_the_batches_of_one_process(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, 9, batch=6)
    taken: list[RenderedBatch] = []
    with BatchStream(cfg.scenes(), 3, 9) as alone, BatchStream(cfg.scenes(), 3, 9, workers=2) as pooled:
        for step in range(3, 9):
            mine, theirs = alone.take(step), pooled.take(step)
            assert mine.step == theirs.step == step
            assert theirs.images.dtype == np.uint8 and theirs.images.shape == (6, 64, 64, 3)
            assert np.array_equal(mine.images, theirs.images)
            assert mine.captions == theirs.captions
            tokens, captions = _batch(step, cfg, SMALL)
            assert torch.equal(tokens_from_images(theirs.images, SMALL.patch), tokens)
            assert theirs.captions == captions
            taken.append(theirs)
    assert not np.array_equal(taken[0].images, taken[1].images)  # steps do differ
    assert not multiprocessing.active_children()


def test_batches_are_taken_strictly_in_step_order() -> None:
    with BatchStream(SceneRecipe(seed=0, batch=2), 5, 7) as stream:
        with pytest.raises(ValueError, match="the next is 5"):
            stream.take(6)
        assert stream.take(5).step == 5 and stream.take(6).step == 6
        with pytest.raises(ValueError, match="stop 7"):
            stream.take(7)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_workers_stop_when_the_training_process_stops(error: type[BaseException]) -> None:
    with pytest.raises(error), BatchStream(SceneRecipe(seed=0, batch=2), 0, 1000, workers=2) as stream:
        stream.take(0)
        assert len(multiprocessing.active_children()) == 2
        raise error
    assert not multiprocessing.active_children()


def test_run_interrupted_with_workers_and_resumed_ends_where_one_uninterrupted_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = Trainer(_cfg(tmp_path / "a", 4), SMALL)
    straight.run()

    real_step = Trainer._step

    def interrupted_at_3(self: Trainer, rendered: RenderedBatch) -> torch.Tensor:
        if self.step == 3:  # after the save at step 2: step 2 is lost and done again
            raise KeyboardInterrupt
        return real_step(self, rendered)

    monkeypatch.setattr(Trainer, "_step", interrupted_at_3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_cfg(tmp_path / "b", 4, workers=2), SMALL).run()
    assert not multiprocessing.active_children()
    monkeypatch.undo()

    resumed = Trainer(_cfg(tmp_path / "b", 4, workers=2), SMALL)
    resumed.run()
    assert resumed.step == 4
    for p, q in zip(straight.params, resumed.params, strict=True):
        assert torch.equal(p, q)
    for e, f in zip(straight.ema, resumed.ema, strict=True):
        assert torch.equal(e, f)
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def test_checkpoints_hold_cpu_tensors_and_resume_across_device_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Trainer(_cfg(tmp_path, 2), SMALL).run()
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    assert state["generator_device"] == "cpu" and state["train_config"]["device"] == "cpu"
    tensors = _tensors(state)
    assert len(tensors) > 20 and all(t.device.type == "cpu" for t in tensors)

    # A checkpoint from before --device has no generator_device: a CPU run's, continued as it was.
    del state["generator_device"]
    torch.save(state, path)
    old = Trainer(_cfg(tmp_path, 3), SMALL)
    assert old.resume() and torch.equal(old.generator.get_state(), state["generator"])

    # One written on a GPU: its generator state cannot drive a CPU generator, so the noise is
    # reseeded from (seed, step), the same on every resume.
    state["generator_device"] = "cuda"
    torch.save(state, path)
    moved = Trainer(_cfg(tmp_path, 3), SMALL)
    assert moved.resume() and moved.step == 2
    expected = torch.Generator().manual_seed(noise_seed(0, 2)).get_state()
    assert torch.equal(moved.generator.get_state(), expected)
    assert not torch.equal(expected, state["generator"])
    assert "noise reseeded from (seed 0, step 2)" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # rms_norm's bf16 input
def test_bf16_autocast_keeps_fp32_weights_and_a_loss_close_to_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI allows bf16 on CUDA only; the code path is the same on the CPU, so it is checked here.
    monkeypatch.setattr(train_module, "check_runtime", lambda cfg: torch.device("cpu"))
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(_cfg(tmp_path / precision, 1, precision=precision), SMALL)
        losses[precision] = trainer.train_step()
        assert all(p.dtype == torch.float32 for p in trainer.params)
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainer.params)
    assert losses["bf16"] != losses["fp32"]  # autocast did run in bf16
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_auto_device_is_cuda_only_where_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize(
    ("flags", "field", "fix"),
    [
        (["--device", "cuda"], "device", "--device cpu"),
        (["--device", "cuda:0"], "device", "--device cpu"),
        (["--device", "tpu"], "device", "--device auto, cpu, cuda or cuda:N"),
        (["--workers", "-1"], "workers", "--workers 0"),
        (["--precision", "fp16"], "precision", "--precision fp32, tf32 or bf16"),
        (["--device", "cpu", "--precision", "bf16"], "precision", "--precision fp32 on the CPU"),
        (["--precision", "tf32"], "precision", "--precision fp32 on the CPU"),
        (["--pooled-swap", "1.5"], "pooled_swap", "--pooled-swap between 0 and 1"),
    ],
)
def test_flags_that_cannot_run_here_are_refused_in_one_line_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    field: str,
    fix: str,
) -> None:
    from scenewright.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this test's machine has no GPU
    assert main(["train-toyworld", "--out", str(tmp_path / "run"), *flags]) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert error.startswith(f"error: {field}: ") and "\n" not in error and fix in error
    assert captured.out == ""  # not even the parameter count
    assert not (tmp_path / "run").exists()


def test_cli_trains_on_the_cpu_with_a_worker_and_reports_samples_per_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.cli import main

    # 25 steps: the CLI logs every 25 (TrainConfig.log_every has no flag).
    argv = ["train-toyworld", "--out", str(tmp_path), "--steps", "25", "--batch", "3", "--warmup", "1",
            "--save-every", "25", "--device", "cpu", "--workers", "1", *SMALL_FLAGS]  # fmt: skip
    assert main(argv) == 0
    assert "samples/s" in capsys.readouterr().err
    (record,) = [json.loads(line) for line in (tmp_path / "train.log").read_text().splitlines()]
    assert record["step"] == 25
    assert record["samples_per_sec"] == pytest.approx(3 / record["sec_per_step"])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 25 and state["train_config"]["device"] == "cpu"
    assert state["train_config"]["workers"] == 1
    assert not multiprocessing.active_children()


def test_recorded_command_names_a_cuda_device_and_the_precision_but_not_the_workers() -> None:
    gpu = training_command(
        asdict(TrainConfig(out="runs/x", device="cuda:1", precision="bf16", workers=8)), {}
    )
    assert gpu.endswith("--threads 0 --device cuda --precision bf16")
    cpu = training_command(asdict(TrainConfig(out="runs/x", device="cpu", workers=8)), {})
    assert cpu.endswith("--threads 0")
    older = asdict(TrainConfig(out="runs/x"))
    for key in ("device", "workers", "precision"):
        del older[key]  # a checkpoint written before these options
    assert training_command(older, {}) == cpu


def test_shape_weights_oversample_the_named_shapes_and_leave_other_runs_batches_alone() -> None:
    import hashlib
    from collections import Counter

    from scenewright.toyworld.batches import render_scenes

    def shapes(recipe: SceneRecipe) -> Counter[str]:
        return Counter(
            shape
            for step in range(4)
            for scene in render_scenes(step, recipe).objects
            for _, shape, _ in scene
        )

    plain = SceneRecipe(seed=2, batch=48, simple_fraction=0.5, empty_fraction=0.05)
    favoured = SceneRecipe(
        seed=2, batch=48, simple_fraction=0.5, empty_fraction=0.05, shape_weights=(("star", 6.0),)
    )
    uniform, stars = shapes(plain), shapes(favoured)
    assert uniform["star"] / sum(uniform.values()) < 0.3 < stars["star"] / sum(stars.values())
    # Without weights the captions are those of runs made before the option existed (this digest
    # was taken from the code before it): rng.choice still draws the shapes.
    captions = "|".join(render_scenes(1, plain).captions)
    assert hashlib.sha256(captions.encode()).hexdigest()[:16] == "87436af69661f446"
    line = training_command(
        asdict(TrainConfig(out="runs/x", shape_weights=(("triangle", 2.0), ("star", 3.0)))), {}
    )
    assert line.endswith("--threads 0 --shape-weights triangle=2,star=3")


def test_shape_weights_are_read_in_vocabulary_order_and_bad_ones_name_the_option() -> None:
    from scenewright.errors import InvalidInputError
    from scenewright.toyworld.command import parse_shape_weights
    from scenewright.toyworld.vocab import SHAPES

    read = parse_shape_weights("star=3, triangle=2")
    assert dict(read) == {"star": 3.0, "triangle": 2.0}
    assert [name for name, _ in read] == [name for name in SHAPES if name in ("star", "triangle")]
    assert parse_shape_weights("") == ()
    for bad, said in (
        ("moon=2", "'moon' is not a shape"),
        ("star=0", "no positive weight"),
        ("star", "no positive weight"),
    ):
        with pytest.raises(InvalidInputError, match=f"shape_weights.*{said}"):
            parse_shape_weights(bad)


def test_pooled_swap_gives_a_share_of_rows_the_next_row_s_vector_and_is_recorded() -> None:
    from scenewright.toyworld.train import swap_pooled

    pooled = torch.arange(400, dtype=torch.float32).reshape(200, 2)
    swapped = swap_pooled(pooled, 0.3, torch.Generator().manual_seed(0))
    moved = (swapped != pooled).any(dim=1)
    assert 0.2 < float(moved.float().mean()) < 0.4
    assert torch.equal(swapped[moved], pooled.roll(-1, dims=0)[moved])  # another sample's vector, whole
    assert torch.equal(swap_pooled(pooled, 0.0, torch.Generator().manual_seed(0)), pooled)
    line = training_command(asdict(TrainConfig(out="runs/x", pooled_swap=0.3)), {})
    assert line.endswith("--threads 0 --pooled-swap 0.3")
    assert "--pooled-swap" not in training_command(asdict(TrainConfig(out="runs/x")), {})


def test_the_swap_reaches_the_training_step(tmp_path: Path) -> None:
    losses = {}
    for share in (0.0, 1.0):
        torch.manual_seed(0)
        losses[share] = float(Trainer(_cfg(tmp_path / str(share), 1, pooled_swap=share), SMALL).train_step())
    torch.manual_seed(0)
    plain = float(Trainer(_cfg(tmp_path / "plain", 1), SMALL).train_step())
    assert losses[0.0] == plain
    assert losses[1.0] != plain
