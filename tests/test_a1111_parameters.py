"""PNGs carry A1111's ``parameters`` text beside our JSON, and readers of that format read it.

Two readers check it: sd-parsers (a maintained library that civitai-style tools use, offline) and
a small reader written here from the format's rules (the last line holds ``key: value`` pairs
separated by commas, a value with a comma or colon is JSON-quoted; the lines above are the prompt,
then ``Negative prompt: ...``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from scenewright.tools.output import PARAMETERS_KEY, a1111_parameters, read_png_metadata, save_png

_PAIR = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def read_a1111(text: str) -> dict[str, str]:
    """The prompt, negative prompt and every key-value of A1111 ``parameters`` text."""
    *above, last = text.split("\n")
    pairs = {key: json.loads(value) if value.startswith('"') else value for key, value in _PAIR.findall(last)}
    prompt, _, negative = "\n".join(above).partition("Negative prompt:")
    return {"prompt": prompt.strip(), "negative": negative.strip(), **pairs}


META = {
    "version": "0.1.0",
    "plan": {"prompt": "two red circles left of a blue square"},
    "settings": {"steps": 20, "guidance": 4.0, "seed": 1234, "height": 64, "width": 96,
                 "negative_prompt": "blurry, green"},
    "backend": {"name": "tiny", "family": "flux"},
    "strategy": "regional:base_ratio=0.2",
}  # fmt: skip


def test_the_parameters_text_reads_back_by_the_formats_rules() -> None:
    text = a1111_parameters(META)
    assert text is not None
    read = read_a1111(text)
    assert read["prompt"] == "two red circles left of a blue square"
    assert read["negative"] == "blurry, green"
    assert (read["Steps"], read["CFG scale"], read["Seed"]) == ("20", "4", "1234")
    assert (read["Size"], read["Model"], read["Sampler"]) == ("96x64", "tiny", "Euler")
    assert read["Strategy"] == "regional:base_ratio=0.2"  # quoted, so its colon splits nothing


def test_no_negative_prompt_line_when_there_is_none_and_no_chunk_without_settings() -> None:
    text = a1111_parameters({**META, "settings": {**META["settings"], "negative_prompt": ""}})
    assert text is not None and "Negative prompt" not in text and len(text.split("\n")) == 2
    assert a1111_parameters({"plan": {"prompt": "x"}}) is None


def test_a_written_png_is_read_by_sd_parsers(tmp_path: Path) -> None:
    sd_parsers = pytest.importorskip("sd_parsers")
    meta = {**META, "strategy": "stitch"}
    path = save_png(Image.new("RGB", (96, 64)), tmp_path / "image.png", meta)
    assert read_png_metadata(path) == meta  # our JSON, unchanged beside it
    with Image.open(path) as image:
        assert PARAMETERS_KEY in image.text
    info = sd_parsers.ParserManager().parse(path)
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    sampler = info.samplers[0]
    assert sampler.name == "Euler"
    assert [p.value for p in sampler.prompts] == ["two red circles left of a blue square"]
    assert [p.value for p in sampler.negative_prompts] == ["blurry, green"]
    assert sampler.parameters == {"cfg_scale": "4", "seed": "1234", "steps": "20"}
    assert sampler.model is not None and sampler.model.name == "tiny"
    assert info.metadata["Size"] == "96x64" and info.metadata["Strategy"] == "stitch"
