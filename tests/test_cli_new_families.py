"""Every face takes the qwen-image and chroma backends: names resolve, sizes and quantization are
checked, and without their weights (offline) loading fails in one line, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from scenewright.cli import main

NOT_CACHED = "is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "a cat", "--backend", "qwen-image"], "'qwen-image' (Qwen/Qwen-Image) " + NOT_CACHED),
        (["generate", "a cat", "--backend", "chroma"], "'chroma' (lodestones/Chroma1-HD) " + NOT_CACHED),
        (
            ["generate", "a cat", "--backend", "chroma", "--width", "1000"],
            "width: 1000 cannot be taken by backend 'chroma'",
        ),
        (["generate", "a cat", "--backend", "qwen-image", "--height", "8"], "height: 8 cannot be taken"),
        (
            ["generate", "a cat", "--backend", "flux-schnell", "--negative-prompt", "blurry"],
            "negative-prompt: backend 'flux-schnell' is guidance-distilled",
        ),
    ],
)
def test_generate_takes_the_new_backends(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert needle in _one_error(capsys)


@pytest.mark.parametrize("backend", ["qwen-image", "chroma"])
def test_batch_takes_the_new_backends(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red apple\n")
    assert main(["batch", str(prompts), "--backend", backend, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert NOT_CACHED in _one_error(capsys)


def test_eval_geneval_takes_the_new_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "m.jsonl"
    meta.write_text(
        '{"tag": "single_object", "include": [{"class": "cat", "count": 1}], "prompt": "a photo of a cat"}\n'
    )
    code = main(
        ["eval", "geneval", str(meta), "--backend", "qwen-image", "--out", str(tmp_path / "o"), "--quiet"]
    )
    assert code == 2
    assert NOT_CACHED in _one_error(capsys)


@pytest.mark.slow  # imports Gradio (~30 s on two busy cores); chat keeps the same options path fast
def test_serve_takes_the_new_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--backend", "chroma", "--out", str(tmp_path / "o")]) == 2
    assert NOT_CACHED in _one_error(capsys)


def test_chat_takes_the_new_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a red apple\n"))
    main(["chat", "--backend", "qwen-image", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert NOT_CACHED in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err


def test_quantize_is_checked_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model_index.json").write_text('{"_class_name": "ChromaPipeline"}')
    args = ["generate", "a cat", "--backend", str(tmp_path), "--quantize", "bnb-4bit", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "quantize: bitsandbytes runs on CUDA only" in _one_error(capsys)
