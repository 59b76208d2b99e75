"""The hostile probes of the reliability table: what each face is given and what must come out.

Each probe is one process (so a hang can be stopped and a crash cannot take the run down): a
``scenewright`` command line, possibly with lines on stdin, or one of the Agent-API cases in
:mod:`scenewright.bench.reliability.agent_cases`. ``expect`` says what a correct product does:
``ok`` (exit 0 and the check holds), ``error`` (exit 2, one line ``error: ...`` naming the
field) or ``either`` (a clean refusal or a run whose check holds, e.g. a warned prompt).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# A check reads what the probe left (its folder, stdout, stderr) and names what is wrong, or None.
Check = Callable[[Path, str, str], str | None]


@dataclass(frozen=True)
class Probe:
    face: str
    name: str
    argv: list[str]  # after ``python -m``; "{tmp}" is the probe's own folder
    expect: str = "error"
    stdin: str = ""
    check: Check | None = None
    setup: Callable[[Path], None] | None = None
    timeout_s: float = 240.0  # the issue called a case past 180 s a hang; a busy 2-core machine needs slack
    env: dict[str, str] = field(default_factory=dict)
    check_on_error: bool = False  # the check holds after a refusal too (a chat must go on)


TINY = ["--steps", "3", "--quiet"]


def _gen(prompt: str, *extra: str, out: str = "{tmp}/out") -> list[str]:
    return ["scenewright", "generate", prompt, "--out", out, *TINY, *extra]


def _plan_objects(tmp: Path) -> list[str]:
    path = tmp / "out" / "plan.json"
    if not path.is_file():
        return []
    return [str(o.get("name")) for o in json.loads(path.read_text()).get("objects", [])]


def _image_written(tmp: Path, out: str, err: str) -> str | None:
    return None if (tmp / "out" / "image.png").is_file() else "no image.png written"


def _names_free_of(*bad: str) -> Check:
    def check(tmp: Path, out: str, err: str) -> str | None:
        names = _plan_objects(tmp)
        wrong = [n for n in names if any(b in n for b in bad)]
        return f"objects named {wrong}" if wrong else _image_written(tmp, out, err)

    return check


def _warned(tmp: Path, out: str, err: str) -> str | None:
    return None if "warning" in (out + err).lower() else "ran without a warning"


def _said(wanted: str) -> Check:
    def check(tmp: Path, out: str, err: str) -> str | None:
        return None if wanted in out + err else f"no line saying {wanted!r}"

    return check


def _no_escape_codes(tmp: Path, out: str, err: str) -> str | None:
    return "raw escape codes echoed" if "\x1b" in out + err else None


def _file(name: str, content: bytes) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / name).write_bytes(content)

    return make


def _folder(name: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / name).mkdir()

    return make


def _existing_image(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "image.png").write_bytes(b"finished image")


def _image_kept(tmp: Path, out: str, err: str) -> str | None:
    kept = (tmp / "out" / "image.png").read_bytes() == b"finished image"
    return None if kept else "the existing image was overwritten"


def _chat_goes_on(tmp: Path, out: str, err: str) -> str | None:
    return None if "seed 5 from the next image on" in out else "the chat did not answer the next line"


def _chat_said(*wanted: str) -> Check:
    """The chat answered with ``wanted`` and went on (a turn that changes nothing says so)."""

    def check(tmp: Path, out: str, err: str) -> str | None:
        missing = [w for w in wanted if w not in out]
        return f"the chat did not say {missing[0]!r}" if missing else _chat_goes_on(tmp, out, err)

    return check


def _chat(*lines: str, history: str | None = None) -> tuple[list[str], str]:
    argv = ["scenewright", "chat", "--out", "{tmp}/chat", "--steps", "3", "--refine-rounds", "0"]
    if history is not None:
        argv += ["--history", history]
    return argv, "\n".join([*lines, "/seed 5", "/quit"]) + "\n"


def _case_held(tmp: Path, out: str, err: str) -> str | None:
    wrong = [line[len("wrong: ") :] for line in out.splitlines() if line.startswith("wrong: ")]
    return wrong[0] if wrong else None


def _agent(case: str, expect: str = "ok") -> Probe:
    argv = ["scenewright.bench.reliability.agent_cases", case]
    return Probe("Agent API", case.replace("_", " "), argv, expect, check=_case_held, timeout_s=300)


def cli_probes() -> list[Probe]:
    return [
        Probe("CLI", "a plain request", _gen("two red circles left of a blue square"), "ok", check=_image_written),
        Probe("CLI", "seed beyond 64 bits", _gen("a red circle", "--seed", str(2**64))),
        Probe("CLI", "negative seed", _gen("a red circle", "--seed", "-2")),  # -1 is a random seed
        Probe("CLI", "--device tpu", _gen("a red circle", "--device", "tpu")),
        Probe("CLI", "--device cuda without CUDA", _gen("a red circle", "--device", "cuda")),
        Probe("CLI", "--out at an existing file", _gen("a red circle", out="{tmp}/f.txt"), setup=_file("f.txt", b"x")),
        Probe("CLI", "--out under a file", _gen("a red circle", out="{tmp}/f.txt/o"), setup=_file("f.txt", b"x")),
        Probe("CLI", "--out in /proc", _gen("a red circle", out="/proc/scenewright-out")),
        Probe("CLI", "--out empty", _gen("a red circle", out="")),
        Probe("CLI", "--out with a finished image", _gen("a red circle"), setup=_existing_image, check=_image_kept),
        Probe("CLI", "--height 100000", _gen("a red circle", "--height", "100000")),
        Probe("CLI", "4096x4096 on the 64 px model", _gen("a red circle", "--height", "4096", "--width", "4096")),
        Probe("CLI", "--height 0", _gen("a red circle", "--height", "0")),
        Probe("CLI", "--steps 100000", ["scenewright", "generate", "a red circle", "--out", "{tmp}/out", "--steps", "100000"]),
        Probe("CLI", "--steps 2.5", _gen("a red circle", "--steps", "2.5")),
        Probe("CLI", "--guidance nan", _gen("a red circle", "--guidance", "nan")),
        Probe("CLI", "--guidance inf", _gen("a red circle", "--guidance", "inf")),
        Probe("CLI", "unknown strategy", _gen("a red circle", "--strategy", "bogus")),
        Probe("CLI", "stitch:fill=-1", _gen("a red circle", "--strategy", "stitch:fill=-1")),
        Probe("CLI", "regional:base_ratio=2", _gen("a red circle", "--strategy", "regional:base_ratio=2")),
        Probe("CLI", "regional:inject_fraction=-0.5", _gen("a red circle", "--strategy", "regional:inject_fraction=-0.5")),
        Probe("CLI", "stitch:object_steps=-3", _gen("a red circle", "--strategy", "stitch:object_steps=-3")),
        Probe("CLI", "refine:rounds=-1", _gen("a red circle", "--strategy", "refine:rounds=-1")),
        Probe("CLI", "unknown option of a strategy", _gen("a red circle", "--strategy", "stitch:bogus=1")),
        Probe("CLI", "unknown backend", _gen("a red circle", "--backend", "no-such-model")),
        Probe("CLI", "backend folder without a model", _gen("a red circle", "--backend", "{tmp}"), setup=_file("x", b"")),
        Probe("CLI", "'no cats'", _gen("no cats")),
        Probe("CLI", "'-3 circles'", _gen("-3 circles")),
        Probe("CLI", "'2.5 circles'", _gen("2.5 circles")),
        Probe("CLI", "'a circle without a square'", _gen("a circle without a square")),
        Probe("CLI", "ANSI codes in the prompt", _gen("\x1b[31mred circle\x1b[0m"), "either", check=_names_free_of("31m", "0m")),
        Probe("CLI", "a French prompt", _gen("deux cercles rouges")),
        Probe("CLI", "an empty prompt", _gen("")),
        Probe("CLI", "an emoji prompt", _gen("\U0001f34e\U0001f34e")),
        Probe("CLI", "a 100,000-character prompt", _gen("red circle " * 10_000)),
        Probe("CLI", "plan: terminal escape codes", ["scenewright", "plan", "\x1b]0;pwned\x07\x1b[2J a red circle"], "either", check=_no_escape_codes),
        Probe("CLI", "plan: an LLM at a closed port", ["scenewright", "plan", "a red circle", "--planner", "llm", "--llm-timeout", "2"], "either",
              check=_warned, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "k"}),
    ]  # fmt: skip


_CHAT_SAYS = {
    "make it 0 circles": _chat_said('say "remove the circles"'),
    "the same move twice": _chat_said("moved to the left", "the square is already on the left"),
}


def chat_probes() -> list[Probe]:
    probes: list[Probe] = []
    for name, lines, setup in [
        ("/load /dev/zero", ["/load /dev/zero"], None),
        ("/load a missing file", ["/load {tmp}/missing.json"], None),
        (
            "/load a plan with a 50 MB prompt",
            ["/load {tmp}/big.json"],
            _file("big.json", b'{"prompt": "' + b"a" * 50_000_000 + b'"}'),
        ),
        ("/load a folder", ["/load {tmp}"], None),
        ("/seed beyond 64 bits", [f"/seed {2**64}"], None),
        ("/strategy bogus", ["/strategy bogus"], None),
        ("an unknown command", ["/frobnicate"], None),
        ("make it 500 circles", ["a red circle", "make it 500 circles"], None),
        ("make it 0 circles", ["two red circles", "make it 0 circles"], None),
        (
            "the same move twice",
            ["a red circle left of a blue square", *["move the square to the left"] * 2],
            None,
        ),
    ]:
        argv, stdin = _chat(*lines)
        probes.append(
            Probe(
                "chat",
                name,
                argv,
                "either",
                stdin=stdin,
                setup=setup,
                check=_CHAT_SAYS.get(name, _chat_goes_on),
                check_on_error=True,
            )
        )
    for name, setup in [("--history at a corrupt file", _file("h.sqlite", b"not a database" * 100)),
                        ("--history at a folder", _folder("h.sqlite"))]:  # fmt: skip
        argv, stdin = _chat("a red circle", history="{tmp}/h.sqlite")
        probes.append(Probe("chat", name, argv, "error", stdin=stdin, setup=setup))
    argv, stdin = _chat("a red circle", history="{tmp}/h.sqlite")
    probes.append(Probe("chat", "a fresh --history file", argv, "ok", stdin=stdin, check=_chat_goes_on))
    review = [
        "scenewright",
        "chat",
        "--review",
        "--out",
        "{tmp}/chat",
        "--steps",
        "3",
        "--refine-rounds",
        "0",
    ]
    probes.append(Probe("chat", "--review: broken JSON, then /cancel", review, "either",
                        stdin="a red circle\n{ not json\n/cancel\n/seed 5\n/quit\n", check=_chat_goes_on, check_on_error=True))  # fmt: skip
    return probes


def agent_probes() -> list[Probe]:
    return [
        _agent("run_none", "error"),
        _agent("unknown_strategy", "error"),
        _agent("plan_of_12000_objects", "error"),
        _agent("plan_with_a_huge_integer", "error"),
        _agent("two_threads_one_model"),
        _agent("two_processes_one_history"),
        _agent("cancel_a_long_render"),
        _agent("llm_that_never_answers"),
        _agent("llm_answer_of_10000_objects"),
        _agent("llm_object_name_not_text"),
        _agent("seed_as_digit_string"),
        _agent("seed_with_a_fraction", "error"),
        _agent("empty_thread_id", "error"),
        _agent("llm_answer_nested_5000_deep"),
        _agent("llm_object_names_with_paths_and_escapes"),
        _web("box_editor_hostile_payloads"),
        _web("empty_image_says_it_differs"),
    ]


def _web(case: str) -> Probe:
    argv = ["scenewright.bench.reliability.agent_cases", case]
    return Probe("web", case.replace("_", " "), argv, "ok", check=_case_held, timeout_s=300)


_RECIPE: dict[str, object] = {
    "plan": {"prompt": "a red circle", "objects": [{"name": "circle", "attributes": ["red"]}]},
    "settings": {"height": 64, "width": 64, "steps": 3, "guidance": 1.0, "seed": 3, "negative_prompt": ""},
    "backend": {"name": "tiny", "dtype": "float32"},
    "strategy": "vanilla",
}
_DEEP = "[" * 5000 + "]" * 5000


def _png_with(text: str) -> Callable[[Path], None]:
    """A PNG whose scenewright metadata is ``text`` (someone else's file, not one we wrote)."""

    def make(tmp: Path) -> None:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("scenewright", text)
        Image.new("RGB", (8, 8)).save(tmp / "in.png", pnginfo=info)

    return make


def _recipe(**changes: object) -> Callable[[Path], None]:
    meta = json.loads(json.dumps(_RECIPE))
    for key, value in changes.items():
        if key in meta["settings"]:
            meta["settings"][key] = value
        else:
            meta[key] = value
    return _png_with(json.dumps(meta))


_RERENDER = ["scenewright", "rerender", "{tmp}/in.png", "--out", "{tmp}/out", "--quiet"]


def _nothing_written(tmp: Path, out: str, err: str) -> str | None:
    return "an output folder was written" if (tmp / "out").exists() else None


def _no_debris(tmp: Path, out: str, err: str) -> str | None:
    left = sorted(p.name for p in (tmp / "out").rglob("*.tmp")) if (tmp / "out").exists() else []
    return f"left {left}" if left else _image_written(tmp, out, err)


def _stale_temp(tmp: Path) -> None:
    """What a kill -9 during a write leaves: our temp, named for a writer that no longer runs."""
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)  # fmt: skip
    (tmp / "out").mkdir()
    (tmp / "out" / f".image.png.{dead}.k9x2ab31.tmp").write_bytes(b"\x89PNG half")


def untrusted_probes() -> list[Probe]:
    """Metadata, plans and files from others: rerender, batch, eval geneval, the rules planner."""
    deep_line = '{"prompt": "a red circle", "x": ' + _DEEP + "}\n"
    geneval_line = json.dumps({"tag": "single_object", "prompt": "a photo of a cat",
                               "include": [{"class": "cat", "count": 1}]}) + "\n"  # fmt: skip
    probes = [
        Probe("rerender", "our own recipe", _RERENDER, "ok", setup=_recipe(), check=_image_written),
        Probe("rerender", "metadata nested 5000 deep", _RERENDER, setup=_png_with('{"plan": {}, "settings": {"x": ' + _DEEP + "}}")),
        Probe("rerender", "NaN at the top level", _RERENDER, setup=_png_with('{"plan": {}, "settings": {}, "x": NaN}')),
        Probe("rerender", "backend a string", _RERENDER, setup=_recipe(backend="tiny")),
        Probe("rerender", "backend a list", _RERENDER, setup=_recipe(backend=["tiny"])),
        Probe("rerender", "plan a list", _RERENDER, setup=_recipe(plan=[1])),
        Probe("rerender", "seed 'x'", _RERENDER, setup=_recipe(seed="x")),
        Probe("rerender", "seed [1]", _RERENDER, setup=_recipe(seed=[1])),
        Probe("rerender", "seed 3.9", _RERENDER, setup=_recipe(seed=3.9)),
        Probe("rerender", "height 0", _RERENDER, setup=_recipe(height=0)),
        Probe("rerender", "steps 0", _RERENDER, setup=_recipe(steps=0)),
        Probe("rerender", "a 1 MB negative prompt", _RERENDER, setup=_recipe(negative_prompt="x" * 900_000)),
        Probe("rerender", "object named with escape codes and markup", _RERENDER,
              setup=_recipe(plan={"prompt": "p", "objects": [{"name": "circle\x1b[2J<script>alert(1)</script>"}]})),
        Probe("rerender", "a hub id in metadata", _RERENDER, setup=_recipe(backend={"name": "someone/model"}), check=_nothing_written, check_on_error=True),
        Probe("rerender", "another folder in metadata", _RERENDER, setup=_recipe(backend={"name": "/tmp"}), check=_nothing_written, check_on_error=True),
        Probe("batch", "a line nested 5000 deep", ["scenewright", "batch", "{tmp}/p.jsonl", "--out", "{tmp}/b"], setup=_file("p.jsonl", deep_line.encode())),
        Probe("batch", "100,001 prompts", ["scenewright", "batch", "{tmp}/p.txt", "--out", "{tmp}/b"], setup=_file("p.txt", b"a red circle\n" * 100_001)),
        Probe("batch", "--num-processes 100000", ["scenewright", "batch", "{tmp}/p.txt", "--out", "{tmp}/b", "--num-processes", "100000"], setup=_file("p.txt", b"a red circle\n")),
        Probe("eval geneval", "a line nested 5000 deep", ["scenewright", "eval", "geneval", "{tmp}/m.jsonl", "--out", "{tmp}/g"], setup=_file("m.jsonl", deep_line.encode())),
        Probe("eval geneval", "--n-samples 100000000", ["scenewright", "eval", "geneval", "{tmp}/m.jsonl", "--out", "{tmp}/g", "--n-samples", "100000000"], setup=_file("m.jsonl", geneval_line.encode()), timeout_s=60),
        Probe("eval geneval", "a count of 10^9 in a clause", ["scenewright", "eval", "geneval", "{tmp}/m.jsonl", "--out", "{tmp}/g"],
              setup=_file("m.jsonl", geneval_line.replace('"count": 1', '"count": 1000000000').encode())),
        Probe("plan (rules)", "'1e9 circles'", ["scenewright", "plan", "1e9 circles"]),
        Probe("plan (rules)", "'a million circles'", ["scenewright", "plan", "a million circles"], "either", check=_warned),
        Probe("plan (rules)", "'a dozen dozen circles'", ["scenewright", "plan", "a dozen dozen circles"]),
        Probe("plan (rules)", "'%s %d {0}'", ["scenewright", "plan", "%s %d {0}"]),
        Probe("plan (rules)", "'../../etc/passwd'", ["scenewright", "plan", "../../etc/passwd"]),
        Probe("plan (rules)", "U+202E in the prompt", ["scenewright", "plan", "a red \u202ecircle"]),
        Probe("plan (rules)", "U+200B in the prompt", ["scenewright", "plan", "a red cir\u200bcle"]),
        Probe("CLI", "--refine-rounds -3", _gen("a red circle", "--refine-rounds", "-3")),
        Probe("CLI", "--thread '' (chat)", ["scenewright", "chat", "--thread", "", "--out", "{tmp}/chat"]),
        Probe("files", "a killed write's temp in --out", _gen("a red circle", "--overwrite"), "ok", setup=_stale_temp, check=_no_debris),
    ]  # fmt: skip
    unknown = "is not a word the tiny model knows"
    probes.append(
        Probe(
            "batch",
            "a word the model cannot draw",
            ["scenewright", "batch", "{tmp}/p.txt", "--out", "{tmp}/b", *TINY],
            "ok",
            setup=_file("p.txt", b"a red pe'ej\n"),
            check=_said("prompt 0: objects[0] 'pe'ej' " + unknown),
        )
    )
    argv, stdin = _chat("/load {tmp}/pe.json")
    probes.append(
        Probe(
            "chat",
            "/load a plan of a word the model cannot draw",
            argv,
            "ok",
            stdin=stdin,
            setup=_file("pe.json", b'{"prompt": "a pe\'ej", "objects": [{"name": "pe\'ej"}]}'),
            check=_said("objects[0] 'pe'ej' " + unknown),
        )
    )
    argv, stdin = _chat("/load {tmp}/deep.json")
    probes.append(Probe("chat", "/load a plan nested 5000 deep", argv, "either", stdin=stdin,
                        setup=_file("deep.json", ('{"prompt": "p", "objects": ' + _DEEP + "}").encode()),
                        check=_chat_goes_on, check_on_error=True))  # fmt: skip
    return probes


def all_probes() -> list[Probe]:
    return [*cli_probes(), *chat_probes(), *untrusted_probes(), *agent_probes()]
