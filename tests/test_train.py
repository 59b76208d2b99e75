"""Training is reproducible and resumable: an interrupted run ends where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.toyworld.train import TrainConfig, Trainer

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1, heads=2, head_dim=16, text_width=32)


def _cfg(out: Path, steps: int) -> TrainConfig:
    return TrainConfig(out=str(out), steps=steps, batch=4, save_every=2, log_every=1, warmup=2)


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    straight = Trainer(_cfg(tmp_path / "a", 4), SMALL)
    straight.run()
    Trainer(_cfg(tmp_path / "b", 2), SMALL).run()
    resumed = Trainer(_cfg(tmp_path / "b", 4), SMALL)
    resumed.run()
    assert resumed.step == straight.step == 4
    for p, q in zip(straight.params, resumed.params, strict=True):
        assert torch.equal(p, q)
    log = (tmp_path / "b" / "train.log").read_text().splitlines()
    assert len(log) == 4  # one line a step, none repeated


def test_export_is_a_loadable_tiny_model_holding_the_ema(tmp_path: Path) -> None:
    trainer = Trainer(_cfg(tmp_path, 2), SMALL)
    trainer.run()
    loaded = TinyBackend.from_pretrained(tmp_path / "export")
    exported = [p for m in (loaded.transformer, loaded.text_encoder) for p in m.parameters()]
    for e, p in zip(trainer.ema, exported, strict=True):
        assert torch.equal(e, p)
    assert any(not torch.equal(e, p) for e, p in zip(trainer.ema, trainer.params, strict=True))


def test_loss_falls_on_a_fixed_batch(tmp_path: Path) -> None:
    trainer = Trainer(TrainConfig(out=str(tmp_path), steps=1, batch=4, lr=3e-3, warmup=1), SMALL)
    trainer.cfg.seed = 5
    first = [trainer.train_step() for _ in range(3)]
    for _ in range(20):
        trainer.step = 0  # the same batch again: the model must fit it
        last = trainer.train_step()
    assert last < 0.7 * sum(first) / 3


def test_init_from_an_export_carries_the_step_count_on(tmp_path: Path) -> None:
    first = Trainer(_cfg(tmp_path / "a", 2), SMALL)
    first.run()
    assert (tmp_path / "a" / "export" / "training.json").read_text().strip() == '{"steps": 2}'
    cfg = _cfg(tmp_path / "b", 2)
    cfg.init_from = str(tmp_path / "a" / "export")
    second = Trainer(cfg, SMALL)
    second.run()
    assert second.prior_steps == 2
    assert (tmp_path / "b" / "export" / "training.json").read_text().strip() == '{"steps": 4}'
    for p, e in zip(second.params, first.ema, strict=True):
        assert p.shape == e.shape


def test_ship_sets_sampling_defaults_and_records_the_commands(tmp_path: Path) -> None:

    import pytest

    from scenewright.toyworld.train import ship

    Trainer(_cfg(tmp_path / "run", 2), SMALL).run()
    dest = ship(
        tmp_path / "run",
        tmp_path / "shipped",
        "scenewright train-toyworld --ship",
        {"default_guidance_max_sigma": 0.8, "default_background_prompt": "a black background"},
    )
    shipped = TinyBackend.from_pretrained(dest).defaults
    assert shipped.guidance_max_sigma == 0.8 and shipped.background_prompt == "a black background"
    record = (dest / "TRAINING.md").read_text()
    assert f"--out {tmp_path / 'run'} --steps 2 --batch 4" in record and "--model-heads 2" in record
    assert "default_guidance_max_sigma 0.8" in record
    with pytest.raises(ValueError, match="only the sampling defaults"):
        ship(tmp_path / "run", tmp_path / "other", "x", {"heads": 8})


def test_resume_accepts_new_sampling_defaults_but_not_another_model(tmp_path: Path) -> None:
    import dataclasses

    import pytest

    Trainer(_cfg(tmp_path, 2), SMALL).run()
    tuned = dataclasses.replace(SMALL, default_guidance=2.0)
    resumed = Trainer(_cfg(tmp_path, 3), tuned)
    assert resumed.resume() and resumed.step == 2
    with pytest.raises(SystemExit, match="heads"):
        Trainer(_cfg(tmp_path, 3), dataclasses.replace(SMALL, heads=4)).resume()


def test_learning_rate_warms_up_holds_then_decays_to_zero(tmp_path: Path) -> None:
    cfg = TrainConfig(out=str(tmp_path), steps=100, warmup=10, decay_steps=20, lr=1e-3)
    trainer = Trainer(cfg, SMALL)
    assert trainer.lr_at(0) == 1e-4 and trainer.lr_at(9) == 1e-3
    assert trainer.lr_at(50) == trainer.lr_at(80) == 1e-3  # stable: independent of the decay
    assert trainer.lr_at(90) == 5e-4 and trainer.lr_at(100) == 0.0
    cfg.decay_steps = 0
    assert trainer.lr_at(99) == 1e-3


def test_simple_fraction_mixes_in_one_and_two_object_scenes_and_zero_keeps_old_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import random

    import scenewright.toyworld.train as train_module
    from scenewright.toyworld.scene import random_scene

    base = _cfg(tmp_path, 1)
    # With simple_fraction 0 the first scene is the rng's first draw, as before the option existed.
    scene, _ = random_scene(random.Random(base.seed * 1_000_003 + 7))
    pixels = torch.tensor(scene.render()).permute(2, 0, 1).float()[None] / 127.5 - 1
    expected = torch.nn.functional.pixel_unshuffle(pixels, SMALL.patch).flatten(2).transpose(1, 2)
    tokens, _ = train_module._batch(7, base, SMALL)
    assert torch.equal(tokens[0], expected[0])

    drawn: list[list[tuple[str, str, int]]] = []

    def recording(rng: random.Random, groups: object = None) -> object:
        result = random_scene(rng, groups)  # type: ignore[arg-type]
        drawn.append([(g.color, g.shape, g.count) for g in result[1]])
        return result

    monkeypatch.setattr(train_module, "random_scene", recording)
    train_module._batch(3, dataclasses.replace(base, batch=64, simple_fraction=1.0), SMALL)
    assert all(len(groups) in (1, 2) and all(g[2] == 1 for g in groups) for groups in drawn)
    assert all(len({(g[0], g[1]) for g in groups}) == len(groups) for groups in drawn)
    two = sum(len(groups) == 2 for groups in drawn)
    assert 16 < two < 48  # about half the scenes hold two objects


def test_ship_of_a_continued_run_records_the_whole_chain_of_commands(tmp_path: Path) -> None:
    from scenewright.toyworld.train import ship

    Trainer(_cfg(tmp_path / "first", 2), SMALL).run()
    shipped = ship(tmp_path / "first", tmp_path / "pkg", "scenewright train-toyworld --ship")
    cfg = TrainConfig(**{**_cfg(tmp_path / "second", 2).__dict__, "init_from": str(shipped)})
    Trainer(cfg, SMALL).run()
    record = (ship(tmp_path / "second", tmp_path / "pkg", "ship again") / "TRAINING.md").read_text()
    commands = [line for line in record.splitlines() if line.startswith("scenewright train-toyworld")]
    assert len(commands) == 2
    assert f"--out {tmp_path / 'first'} " in commands[0]
    assert f"--init-from {tmp_path / 'first'}/export" in commands[1]
    assert f"--init-from {shipped}" not in commands[1]
    assert "ship again" in record and "4 steps** in all" in record


def test_empty_fraction_draws_blank_scenes_captioned_as_the_background(tmp_path: Path) -> None:
    import dataclasses

    from scenewright.toyworld.captions import EMPTY_CAPTIONS
    from scenewright.toyworld.train import _batch

    cfg = dataclasses.replace(_cfg(tmp_path, 1), batch=16, empty_fraction=1.0, caption_dropout=0.0)
    tokens, captions = _batch(0, cfg, SMALL)
    assert set(captions) <= set(EMPTY_CAPTIONS)
    assert torch.equal(tokens, torch.full_like(tokens, tokens.flatten()[0].item()))  # one flat colour
    mixed = dataclasses.replace(cfg, batch=200, empty_fraction=0.1, simple_fraction=0.3)
    _, captions = _batch(1, mixed, SMALL)
    assert 5 <= sum(c in EMPTY_CAPTIONS for c in captions) <= 40


def test_train_command_refuses_shares_that_do_not_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.cli import main

    argv = ["train-toyworld", "--out", str(tmp_path), "--simple-fraction", "0.8", "--empty-fraction", "0.3"]
    assert main(argv) != 0
    assert "empty_fraction" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()


def test_train_command_continues_a_model_with_its_own_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--init-from takes the sizes and sampling defaults recorded beside the weights it starts
    from, so continuing a non-default model (tiny16's 4x4 patches) needs no --model-* options."""
    import dataclasses
    import json

    from scenewright.cli import main

    source = dataclasses.replace(SMALL, patch=4, default_guidance_max_sigma=0.8)
    Trainer(_cfg(tmp_path / "a", 1), source).run()
    argv = ["train-toyworld", "--out", str(tmp_path / "b"), "--steps", "1", "--batch", "2"]
    assert main([*argv, "--init-from", str(tmp_path / "a" / "export")]) == 0
    codec = json.loads((tmp_path / "b" / "export" / "codec.json").read_text())
    assert codec == dataclasses.asdict(source)

    assert main([*argv, "--init-from", str(tmp_path / "nothing")]) != 0
    err = capsys.readouterr().err
    assert "init_from" in err and "codec.json" in err

    assert main([*argv, "--init-from", str(tmp_path / "a" / "export"), "--model-patch", "8"]) != 0
    err = capsys.readouterr().err
    assert "patch=4" in err and "Traceback" not in err


def test_ship_keeps_the_tuning_records_of_the_folder_it_replaces(tmp_path: Path) -> None:
    """Shipping new weights into a model folder (tiny16's) keeps the strategy options and auto's
    table measured there, and reads a multi-line training command of the earlier record whole."""
    from scenewright.toyworld.train import earlier_runs, ship

    Trainer(_cfg(tmp_path / "run", 1), SMALL).run()
    dest = tmp_path / "models" / "toyworld16"
    ship(tmp_path / "run", dest, "first ship")
    (dest / "strategy_defaults.json").write_text('{"regional": {"text_boost": 3}}')
    (dest / "TRAINING.md").write_text(
        "intro\n\n```bash\nscenewright train-toyworld --out runs/a --device cuda \\\n"
        "  --steps 10 --model-patch 4\ncp -r runs/a/export/. somewhere\n```\n"
    )
    assert earlier_runs(str(dest)) == [
        "scenewright train-toyworld --out runs/a --device cuda --steps 10 --model-patch 4"
    ]
    shipped = ship(tmp_path / "run", dest, "second ship")
    assert (shipped / "strategy_defaults.json").read_text() == '{"regional": {"text_boost": 3}}'
    assert not (shipped / "auto_table.json").exists()
    assert "(`toyworld16`)" in (shipped / "TRAINING.md").read_text()


def test_ship_to_refuses_a_folder_that_holds_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenewright.cli import main

    Trainer(_cfg(tmp_path / "run", 1), SMALL).run()
    argv = [
        "train-toyworld",
        "--out",
        str(tmp_path / "run"),
        "--ship",
        "--ship-to",
        str(tmp_path / "nowhere"),
    ]
    assert main(argv) != 0
    assert "ship_to" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_a_folder_from_before_the_prediction_field_reads_as_velocity_everywhere(tmp_path: Path) -> None:
    """Loading, shipping and --init-from read codec.json through one reader, so an old folder
    (no "prediction") continues as the velocity model it is, not as the newer default."""
    import json

    from scenewright.toyworld.command import _init_from_config

    (tmp_path / "codec.json").write_text(json.dumps({"patch": 4, "heads": 2}))
    assert _init_from_config(str(tmp_path)) == {"patch": 4, "heads": 2, "prediction": "velocity"}
