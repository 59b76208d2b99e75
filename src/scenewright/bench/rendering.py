"""What ``batch`` and ``eval geneval`` share: the options that decide an image, checked before
any weights load, and a renderer that plans a prompt and renders it with one seed."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from scenewright import __version__
from scenewright.agent.options import add_lora_option
from scenewright.backends.specs import OFFLOAD_MODES, QUANTIZE_CHOICES

if TYPE_CHECKING:
    from PIL import Image

    from scenewright.planner.plan import Plan


def add_render_options(p: argparse.ArgumentParser, strategy_and_planner: bool = True) -> None:
    """Backend, strategy, planner, sampling, device and sharding options (a command that takes
    ``generate``'s agent options passes ``strategy_and_planner=False``: they define those two)."""
    p.add_argument(
        "--backend", default="tiny", help="tiny (default), flux-dev, sd3.5-large, ..., or a folder"
    )
    if strategy_and_planner:
        p.add_argument("--strategy", default="auto", help="auto (default) or a strategy name, e.g. vanilla")
        p.add_argument("--planner", default="rules", choices=["rules", "llm"], help="rules (default) or llm")
    p.add_argument("--steps", type=int, help="denoising steps (default: the backend's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backend's)")
    p.add_argument("--height", type=int, help="image height (default: the backend's)")
    p.add_argument("--width", type=int, help="image width (default: the backend's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample; sample k uses seed + k")
    p.add_argument("--device", help="cuda, cpu, ... (default: each rank's own GPU, else the CPU)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16")
    p.add_argument("--cpu-offload", nargs="?", const="model", choices=OFFLOAD_MODES, default=None,
                   help="keep weights on the CPU while idle (model or sequential)")  # fmt: skip
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None,
                   help="load the transformer and large text encoder quantized: bnb-4bit, bnb-8bit (CUDA), "
                   "torchao-int8 (pip install 'scenewright[torchao]')")  # fmt: skip
    p.add_argument("--num-processes", type=int, default=1,
                   help="start this many local ranks (default 1; under accelerate launch, leave it)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_lora_option(p)


@dataclass(frozen=True)
class RenderOptions:
    """Everything that decides the images; ``record`` is what a folder remembers of a run."""

    backend: str
    strategy: str
    planner: str
    steps: int | None
    guidance: float | None
    height: int | None
    width: int | None
    seed: int
    loras: tuple[str, ...] = ()  # --lora values, as given

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RenderOptions:
        return cls(args.backend.strip(), args.strategy.strip(), args.planner, args.steps, args.guidance,
                   args.height, args.width, args.seed, tuple(getattr(args, "lora", None) or ()))  # fmt: skip

    def record(self) -> dict[str, Any]:
        record = asdict(self)
        if not self.loras:  # folders written without LoRAs keep the record they always had
            record.pop("loras")
        else:
            record["loras"] = list(self.loras)
        return record


def quick_check(options: RenderOptions, device: str | None) -> None:
    """Every problem found without torch: backend, strategy and options, bounds, the device's name."""
    from scenewright.agent.bounds import check_sampling
    from scenewright.backends.flux2_specs import check_strategy_options
    from scenewright.backends.specs import ALIASES, check_device_name, resolve_backend
    from scenewright.executor.catalogue import check_strategy
    from scenewright.executor.limits import check_seed

    check_seed(options.seed)
    spec = ALIASES.get(options.backend) or resolve_backend(options.backend)
    check_sampling(spec, options.steps, options.height, options.width, options.guidance)
    resolve_backend(options.backend)
    check_strategy(options.strategy)
    check_strategy_options(spec, options.strategy)
    check_device_name(device)
    if options.loras:
        from scenewright.backends.lora_files import inspect_lora, lora_family_of, parse_loras

        for lora in parse_loras(list(options.loras)):
            inspect_lora(lora, lora_family_of(spec.family))


def precheck(options: RenderOptions, device: str | None) -> None:
    """Every problem found without weights: ``quick_check``'s, then whether this machine has the
    device (which needs torch)."""
    from scenewright.backends.registry import resolve_device

    quick_check(options, device)
    resolve_device(device)


class Renderer:
    """Plans prompts and renders them; the backend loads on the first render."""

    def __init__(
        self,
        options: RenderOptions,
        device: str | None,
        dtype: str,
        cpu_offload: str | None,
        quantize: str | None = None,
    ) -> None:
        self.options = options
        self.device, self.dtype, self.cpu_offload, self.quantize = device, dtype, cpu_offload, quantize
        self._backend: Any = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from scenewright.backends import load_backend, resolve_backend

            self._backend = load_backend(
                resolve_backend(self.options.backend),
                device=self.device,
                dtype=self.dtype,
                cpu_offload=self.cpu_offload,
                quantize=self.quantize,
            )
            if self.options.loras:
                from scenewright.backends.lora import load_loras

                load_loras(self._backend, self.options.loras)
        return self._backend

    def plan(self, prompt: str) -> Plan:
        return self.plan_with_warnings(prompt)[0]

    def plan_with_warnings(self, prompt: str) -> tuple[Plan, list[str]]:
        """The plan and what the user must hear: the planner's warnings, then each object name the
        backend has no word for (loading the backend if it is not loaded yet)."""
        from scenewright.planner.command import make_plan
        from scenewright.planner.unknown_words import unknown_word_notes

        result = make_plan(prompt, self.options.planner, seed=self.options.seed)
        return result.plan, [*result.warnings, *unknown_word_notes(result.plan, self.backend)]

    def render(self, plan: Plan, seed: int) -> tuple[Image.Image, dict[str, Any]]:
        """The image and the metadata its PNG carries (plan, settings, strategy, version)."""
        from scenewright.executor.sampler import SamplingSettings
        from scenewright.executor.strategies import run_strategy

        backend = self.backend
        defaults = backend.defaults
        o = self.options
        settings = SamplingSettings(
            height=o.height or defaults.height,
            width=o.width or defaults.width,
            steps=o.steps or defaults.steps,
            guidance=defaults.guidance if o.guidance is None else o.guidance,
            seed=seed,
        )
        settings.validate(backend)
        result = run_strategy(o.strategy, backend, plan, settings)
        metadata = {
            "version": __version__,
            "plan": plan.to_json_dict(),
            "settings": asdict(settings),
            "backend": backend.describe(),
            "strategy": result.strategy or o.strategy,
        }
        return result.image, metadata
