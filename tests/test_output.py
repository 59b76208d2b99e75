from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from scenewright.errors import OutputExistsError
from scenewright.tools.output import atomic_write_bytes, check_free, read_png_metadata, save_png


def test_atomic_write_keeps_existing_file_and_writes_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    target.write_bytes(b"old")
    written = atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert written == tmp_path / "image-1.png" and written.read_bytes() == b"new"
    assert atomic_write_bytes(target, b"newer", overwrite=True) == target
    assert target.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image-1.png", "image.png"]  # no temp files left


def test_check_free_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(OutputExistsError, match=r"plan\.json already exists; pass --overwrite"):
        check_free([tmp_path / "image.png", tmp_path / "plan.json"], overwrite=False)
    check_free([tmp_path / "plan.json"], overwrite=True)


def test_png_metadata_roundtrip(tmp_path: Path) -> None:
    meta = {"version": "x", "plan": {"prompt": "a cat"}, "settings": {"seed": 3}}
    path = save_png(Image.new("RGB", (4, 4), (255, 0, 0)), tmp_path / "a.png", meta)
    assert read_png_metadata(path) == meta
    assert Image.open(path).getpixel((0, 0)) == (255, 0, 0)
    Image.new("RGB", (2, 2)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no scenewright metadata"):
        read_png_metadata(tmp_path / "plain.png")


def test_a_killed_writers_temp_is_removed_by_the_next_write_and_check(tmp_path: Path) -> None:
    import subprocess
    import sys

    from scenewright.tools.output import check_output_folder, write_together

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has exited: its temps are debris
    stale = tmp_path / f".image.png.{pid}.abcd1234.tmp"
    stale.write_bytes(b"half a png")
    foreign = tmp_path / ".notes.tmp"  # not our naming: left alone
    foreign.write_bytes(b"x")
    live = tmp_path / f".plan.json.{os.getpid()}.abcd1234.tmp"  # a writer still running
    live.write_bytes(b"{")
    check_output_folder(tmp_path)
    assert not stale.exists() and foreign.exists() and live.exists()
    stale.write_bytes(b"half a png")
    atomic_write_bytes(tmp_path / "other.bin", b"1")
    assert not stale.exists()
    # Written together: nothing under a final name until the block ends, nothing at all if it fails.
    with pytest.raises(RuntimeError), write_together():
        atomic_write_bytes(tmp_path / "a.png", b"a")
        assert not (tmp_path / "a.png").exists()
        raise RuntimeError("killed between files")
    assert not (tmp_path / "a.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".notes.tmp", live.name, "other.bin"])
    with write_together():
        first = atomic_write_bytes(tmp_path / "a.png", b"a")
        second = atomic_write_bytes(tmp_path / "b.json", b"b")
    assert first.read_bytes() == b"a" and second.read_bytes() == b"b"


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    import subprocess
    import sys

    from scenewright.tools.output import clean_stale_temps, staged_folder

    final = tmp_path / "seed-2"
    with pytest.raises(KeyboardInterrupt), staged_folder(final) as stage:
        atomic_write_bytes(stage.path / "image.png", b"i")
        raise KeyboardInterrupt  # Ctrl-C after the image, before the plan
    assert list(tmp_path.iterdir()) == []
    with staged_folder(final) as stage:
        atomic_write_bytes(stage.path / "image.png", b"i")
        assert not final.exists()
        stage.keep = False  # a cancelled render
    assert list(tmp_path.iterdir()) == []
    with staged_folder(final) as stage:
        atomic_write_bytes(stage.path / "image.png", b"i")
        atomic_write_bytes(stage.path / "refine1" / "plan.json", b"{}")
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*") if p.is_file()) == [
        "image.png",
        "refine1/plan.json",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["seed-2"]
    # Into a folder that exists: moved file by file, replacing only with overwrite.
    with staged_folder(final, overwrite=True) as stage:
        atomic_write_bytes(stage.path / "image.png", b"new")
    assert (final / "image.png").read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["seed-2"]
    # What a kill -9 leaves (a staging folder of a dead writer) goes with the next write there.
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True).stdout)  # fmt: skip
    dead = tmp_path / f".seed-3.{pid}.k2j_x8.tmp"
    (dead / "refine1").mkdir(parents=True)
    (dead / "image.png").write_bytes(b"half")
    assert clean_stale_temps(tmp_path) == [dead] and not dead.exists()


@pytest.mark.parametrize("exists", [False, True], ids=["new folder", "empty folder"])
def test_a_renders_files_appear_in_its_folder_whole_or_not_at_all(tmp_path: Path, exists: bool) -> None:
    """The agent writes a render into a staging folder renamed into place at once: a write that
    dies after its first file leaves neither the folder's files nor the staging folder."""
    from scenewright.agent import nodes
    from scenewright.tools.output import save_json

    folder = tmp_path / "0001"
    if exists:
        folder.mkdir()

    def dies(target: Path) -> tuple[dict[str, str], None]:
        save_json({"objects": []}, target / "plan.json")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nodes._write_set(folder, False, dies)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["0001"] if exists else [])
    assert not folder.exists() or list(folder.iterdir()) == []

    def writes(target: Path) -> tuple[dict[str, str], None]:
        return {"plan": str(save_json({"objects": []}, target / "plan.json"))}, None

    paths, sheet = nodes._write_set(folder, False, writes)
    assert paths == {"plan": str(folder / "plan.json")} and sheet is None
    assert [p.name for p in folder.iterdir()] == ["plan.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["0001"]
