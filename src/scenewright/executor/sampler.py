"""Our flow-matching Euler sampler, with hooks per step and per block for the strategies.

It reproduces what diffusers' FluxPipeline and StableDiffusion3Pipeline do (same scheduler, same
timestep shift, same guidance arithmetic), which the parity tests check to 1e-4, so that every
strategy built on it differs from vanilla only by what the strategy changes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from scenewright.backends.base import Backend, BlockRef, GuidanceMode, PromptEncoding
from scenewright.errors import InvalidInputError, RenderCancelled
from scenewright.executor.catalogue import GUIDANCE_STEPS
from scenewright.executor.limits import check_guidance, check_seed, check_steps
from scenewright.executor.options import require_choice


@dataclass(frozen=True)
class SamplingSettings:
    """Everything besides the prompt that decides the image."""

    height: int
    width: int
    steps: int
    guidance: float
    seed: int = 0
    negative_prompt: str = ""
    # CFG is applied only at steps whose noise level is at most this (guidance in a limited
    # interval, Kynkaanniemi et al. 2024); None takes the backend's default (1.0: every step).
    guidance_max_sigma: float | None = None

    def validate(self, backend: Backend | None = None) -> None:
        """Raise :class:`InvalidInputError` for values no backend can use."""
        check_steps(self.steps)
        check_guidance(self.guidance)
        if self.guidance_max_sigma is not None and not 0 <= self.guidance_max_sigma <= 1:
            raise InvalidInputError(
                "guidance_max_sigma",
                f"{self.guidance_max_sigma} is not a noise level",
                "use a value in [0, 1]",
            )
        check_seed(self.seed)
        if backend is not None:
            backend.check_size(self.height, self.width)


# Where a strategy applies classifier-free guidance: "model" keeps the model's own interval
# (``guidance_max_sigma``), "all" guides every step. The toy models skip CFG at high noise, which
# is where a region commits to its object (regional, Stitch's box pass) and where TACA acts.


def settings_guided_on(settings: SamplingSettings, guidance_steps: str) -> SamplingSettings:
    """``settings`` with CFG on every step when ``guidance_steps`` is "all" (a CFG model only; a
    guidance-distilled one has no unconditional pass to add, and ignores it)."""
    require_choice("guidance_steps", guidance_steps, GUIDANCE_STEPS)
    if guidance_steps == "model":
        return settings
    return replace(settings, guidance_max_sigma=1.0)


@dataclass
class StepContext:
    """What hooks see: where the sampler is, and the current latents."""

    step: int
    num_steps: int
    timestep: torch.Tensor
    sigma: float
    latents: torch.Tensor
    height: int
    width: int
    next_sigma: float = 0.0  # the noise level the scheduler step moves to
    extras: dict[str, Any] = field(default_factory=dict)


class SamplerHook:
    """Base class for strategies that act during sampling; override what you need.

    ``after_step`` may return replacement latents (Stitch pastes objects this way);
    ``after_block`` may return a replacement block output. Block hooks are only installed when a
    hook overrides them, so plain sampling pays nothing.
    """

    # True for hooks that read or change what happens inside the transformer (attention, blocks):
    # they see the CFG batch [unconditional; conditional] at every step. Hooks that only watch or
    # replace the latents between steps set it False, and then the sampler skips the
    # unconditional row at the steps outside the guidance interval, where it would be discarded.
    needs_model_batch: ClassVar[bool] = True

    def before_step(self, ctx: StepContext) -> None:
        """Called before the transformer runs at ``ctx.step``."""

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        """Called with the latents after the scheduler step; return new latents to replace them."""
        return None

    def before_block(self, ctx: StepContext, block: BlockRef) -> None:
        """Called before ``block`` runs."""

    def after_block(self, ctx: StepContext, block: BlockRef, output: Any) -> Any | None:
        """Called with ``block``'s output; return a value to replace it."""
        return None

    def attention_kwargs(self, ctx: StepContext) -> dict[str, Any]:
        """Extra keyword arguments for the attention processors at this step."""
        return {}


class CancelCheck(SamplerHook):
    """Stops a render at the next step once ``is_cancelled()`` says so.

    The check runs before each transformer call, so a cancel costs at most one step; raising (not
    returning early) unwinds every strategy phase and restores the model's processors.
    """

    needs_model_batch = False

    def __init__(self, is_cancelled: Callable[[], bool]) -> None:
        self.is_cancelled = is_cancelled

    def before_step(self, ctx: StepContext) -> None:
        if self.is_cancelled():
            raise RenderCancelled()


@dataclass
class SampleResult:
    latents: torch.Tensor
    images: torch.Tensor  # float (B, 3, H, W) in [0, 1]
    settings: SamplingSettings


def _overrides(hook: SamplerHook, name: str) -> bool:
    return getattr(type(hook), name) is not getattr(SamplerHook, name)


@contextmanager
def _block_hooks(
    backend: Backend, hooks: Sequence[SamplerHook], state: dict[str, StepContext]
) -> Iterator[None]:
    """Install forward hooks on every block for the hooks that want them; remove them after."""
    wanted_before = [h for h in hooks if _overrides(h, "before_block")]
    wanted_after = [h for h in hooks if _overrides(h, "after_block")]
    handles = []
    if wanted_before or wanted_after:
        for block in backend.blocks():

            def pre(_module: torch.nn.Module, _args: Any, block: BlockRef = block) -> None:
                for hook in wanted_before:
                    hook.before_block(state["ctx"], block)

            def post(_module: torch.nn.Module, _args: Any, output: Any, block: BlockRef = block) -> Any:
                for hook in wanted_after:
                    replaced = hook.after_block(state["ctx"], block, output)
                    if replaced is not None:
                        output = replaced
                return output

            handles.append(block.module.register_forward_pre_hook(pre))
            handles.append(block.module.register_forward_hook(post))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same noise on every device."""
    return torch.Generator("cpu").manual_seed(seed)


@torch.no_grad()
def sample(
    backend: Backend,
    encoding: PromptEncoding,
    settings: SamplingSettings,
    *,
    negative: PromptEncoding | None = None,
    hooks: Sequence[SamplerHook] = (),
    latents: torch.Tensor | None = None,
    progress: bool = True,
    decode: bool = True,
    max_steps: int | None = None,
    start_step: int = 0,
) -> SampleResult:
    """Denoise from noise (or ``latents``) to an image for every prompt in ``encoding``.

    ``max_steps`` stops early on the full schedule (a reference pass reads attention at a middle
    step); the returned latents are then the partly denoised ones. ``start_step`` continues such
    latents (given in ``latents``) from that step of the same schedule.
    """
    settings.validate(backend)
    batch = len(encoding)
    height, width = settings.height, settings.width
    if latents is None:
        if start_step:
            raise ValueError("start_step needs the latents to continue from")
        latents = backend.prepare_noise(batch, height, width, make_generator(settings.seed))

    use_cfg = backend.guidance_mode is GuidanceMode.CFG and settings.guidance > 1
    model_encoding = encoding
    if use_cfg:
        if negative is None:
            negative = backend.encode_prompts([settings.negative_prompt] * batch)
        model_encoding = PromptEncoding.concat([negative, encoding])
    embedded_guidance = settings.guidance if backend.guidance_mode is GuidanceMode.EMBEDDED else None
    max_sigma = settings.guidance_max_sigma
    if max_sigma is None:
        max_sigma = backend.defaults.guidance_max_sigma
    skip_unguided_row = not any(hook.needs_model_batch for hook in hooks)

    scheduler = backend.new_scheduler()
    timesteps = backend.set_timesteps(scheduler, settings.steps, height, width)
    scheduler.set_begin_index(start_step)  # the scheduler counts its own steps from here
    state: dict[str, StepContext] = {}
    total = (len(timesteps) if max_steps is None else min(max_steps, len(timesteps))) - start_step
    bar = tqdm(total=total, desc="denoising", disable=not progress, file=sys.stderr, leave=False)
    # Block hooks sit on the shared transformer: renders on one model take turns (re-entrant, so a
    # strategy holding the lock around its attention engine samples inside it freely).
    with backend.render_lock(), _block_hooks(backend, hooks, state), bar:
        for index, t in enumerate(timesteps):
            if max_steps is not None and index >= max_steps:
                break
            if index < start_step:
                continue
            ctx = StepContext(
                step=index,
                num_steps=len(timesteps),
                timestep=t,
                sigma=float(scheduler.sigmas[index]),
                latents=latents,
                next_sigma=float(scheduler.sigmas[index + 1]),
                height=height,
                width=width,
            )
            state["ctx"] = ctx
            attention_kwargs: dict[str, Any] = {}
            for hook in hooks:
                hook.before_step(ctx)
                attention_kwargs.update(hook.attention_kwargs(ctx))
            guided = use_cfg and ctx.sigma <= max_sigma + 1e-6
            # Outside the interval the conditional velocity is used alone, so its unconditional
            # row is skipped, unless a hook inside the model needs one batch layout throughout.
            both_rows = guided or (use_cfg and not skip_unguided_row)
            velocity = backend.forward(
                torch.cat([latents, latents]) if both_rows else latents,
                t,
                model_encoding if both_rows else encoding,
                height=height,
                width=width,
                guidance=embedded_guidance,
                attention_kwargs=attention_kwargs or None,
            )
            if both_rows:
                uncond, cond = velocity.chunk(2)
                velocity = backend.combine_guidance(uncond, cond, settings.guidance if guided else 1.0)
            latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
            for hook in hooks:
                replaced = hook.after_step(ctx, latents)
                if replaced is not None:
                    latents = replaced
            bar.update()
    images = backend.decode(latents, height, width) if decode else torch.empty(0)
    return SampleResult(latents=latents, images=images, settings=settings)
