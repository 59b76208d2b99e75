"""Training scenes, rendered in this process or ahead by worker processes, taken in step order.

A step's scenes and captions are a pure function of (seed, step) (``render_scenes``), so workers
that render later steps while the model trains change nothing but the wall-clock time: a
``BatchStream`` with any number of workers hands out exactly the batches of ``workers=0``.
This module imports no torch: workers draw scenes with PIL and numpy and send back uint8 arrays
and captions; tensors are made in the training process.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import NamedTuple

import numpy as np

from scenewright.toyworld.captions import caption, empty_caption
from scenewright.toyworld.scene import Group, Scene, ShapeWeights, random_groups, random_scene, simple_groups

# Batches in flight per worker: one rendering, one waiting, so that no worker idles between steps.
AHEAD_PER_WORKER = 2

SceneDraw = Callable[..., tuple[Scene, list[Group]]]


@dataclass(frozen=True)
class SceneRecipe:
    """The settings that decide a batch's scenes and captions (what workers need of TrainConfig)."""

    seed: int
    batch: int
    caption_dropout: float = 0.1
    simple_fraction: float = 0.0
    empty_fraction: float = 0.0
    shape_weights: ShapeWeights = ()


# One object of a scene as a batch carries it, for the grounding loss: (colour, shape, pixel box).
ObjectRecord = tuple[str, str, tuple[float, float, float, float]]


class RenderedBatch(NamedTuple):
    """One step's scenes: ``images`` is (batch, height, width, 3) uint8; ``objects`` lists what
    each scene holds (the ground truth the grounding loss needs)."""

    step: int
    images: np.ndarray
    captions: list[str]
    objects: tuple[list[ObjectRecord], ...] = ()


def render_scenes(step: int, recipe: SceneRecipe, draw: SceneDraw = random_scene) -> RenderedBatch:
    """The batch for ``step``: a pure function of (seed, step), so resuming replays nothing twice.

    ``draw`` is the scene sampler; the training module passes its own so that tests can watch it.
    """
    rng = random.Random(recipe.seed * 1_000_003 + step)
    mixed = recipe.simple_fraction > 0 or recipe.empty_fraction > 0
    images, captions, objects = [], [], []
    for _ in range(recipe.batch):
        # One draw picks the kind of scene; none when neither option is on (the batches of older runs).
        roll = rng.random() if mixed else 1.0
        if roll < recipe.simple_fraction:
            scene, groups = draw(rng, simple_groups(rng, recipe.shape_weights))
        elif roll < recipe.simple_fraction + recipe.empty_fraction:
            scene, groups = Scene([]), []
        elif recipe.shape_weights:
            scene, groups = draw(rng, random_groups(rng, shape_weights=recipe.shape_weights))
        else:
            scene, groups = draw(rng)  # the sampler picks the groups: the batches of older runs
        images.append(scene.render())
        objects.append([(o.color, o.shape, o.box) for o in scene.objects])
        if rng.random() < recipe.caption_dropout:
            captions.append("")
        else:
            captions.append(caption(groups, rng) if groups else empty_caption(rng))
    return RenderedBatch(step, np.stack(images), captions, tuple(objects))


def worker_context() -> BaseContext:
    """forkserver where the platform has it, else spawn; never fork.

    The training process runs torch's thread pools (and maybe CUDA): a child forked from it can
    deadlock on a lock some thread held, and cannot use CUDA. A forkserver forks workers from a
    clean server process instead, cheaply; spawn starts each one afresh.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the training process, which shuts the pool down in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class BatchStream:
    """Rendered batches for the steps ``start, start + 1, ...`` below ``stop``, in step order.

    With ``workers`` > 0, a process pool renders up to ``AHEAD_PER_WORKER * workers`` steps
    ahead. Use the stream as a context manager: the pool starts on entry and is shut down on any
    exit, an exception or Ctrl-C included, so no worker outlives the run.
    """

    def __init__(self, recipe: SceneRecipe, start: int, stop: int, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.recipe = recipe
        self.next_step = start
        self.stop = stop
        self.workers = workers
        self._submitted = start
        self._pending: deque[Future[RenderedBatch]] = deque()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BatchStream:
        if self.workers:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=worker_context(), initializer=_ignore_interrupts
            )
            self._fill()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers: queued renders are dropped, running ones (a batch each) finish."""
        pool, self._pool = self._pool, None
        self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def take(self, step: int) -> RenderedBatch:
        """The batch for ``step``, which must be the next one: training consumes strictly in order."""
        if step != self.next_step or step >= self.stop:
            raise ValueError(f"batch for step {step} asked; the next is {self.next_step} (stop {self.stop})")
        self.next_step += 1
        if not self.workers:
            return render_scenes(step, self.recipe)
        if self._pool is None:
            raise RuntimeError("enter the stream (with BatchStream(...) as stream) to start its workers")
        rendered = self._pending.popleft().result()
        self._fill()
        return rendered

    def _fill(self) -> None:
        """Keep the pool busy with the steps after the last one submitted."""
        assert self._pool is not None
        while self._submitted < self.stop and len(self._pending) < AHEAD_PER_WORKER * self.workers:
            self._pending.append(self._pool.submit(render_scenes, self._submitted, self.recipe))
            self._submitted += 1
