"""Splitting a list of prompts over processes: rank ``r`` of ``w`` takes every index ``i`` with
``i % w == r``, so ranks never write the same file and any rank can be rerun alone.

Under ``accelerate launch`` (or torchrun) the rank comes from accelerate's ``PartialState``;
``--num-processes N`` starts N local copies of the same command with the environment that
``PartialState`` reads (gloo on CPUs, NCCL on GPUs), so both paths run the same code.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from scenewright.errors import InvalidInputError

# One rank per GPU; no single machine has more than this many, and each rank loads the model.
MAX_PROCESSES = 64

RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes working on one list."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def indices(self, count: int) -> list[int]:
        """The indices of ``count`` items this rank owns."""
        return [i for i in range(count) if i % self.world == self.rank]

    def device(self, requested: str | None) -> str | None:
        """The device this rank renders on: the one asked for, else its own GPU when there are GPUs."""
        if requested:
            return requested
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else None


def launched() -> bool:
    """Whether a launcher (accelerate, torchrun, ``--num-processes``) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def current_shard(device: str | None = None) -> Shard:
    """This process's shard: rank 0 of 1 unless a launcher started several."""
    if not launched():
        return Shard()
    import torch
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or (device or "").startswith("cpu")
    state = PartialState(cpu=cpu)
    return Shard(int(state.process_index), int(state.num_processes), int(state.local_process_index))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` with ``option VALUE`` (or ``option=VALUE``) removed."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


def spawn(num_processes: int, argv: Sequence[str]) -> int:
    """Run ``scenewright ARGV`` as ``num_processes`` local ranks and wait; the worst exit code."""
    if not 1 <= num_processes <= MAX_PROCESSES:
        raise InvalidInputError(
            "num-processes",
            f"{num_processes} is outside 1..{MAX_PROCESSES}",
            "use one process per GPU, e.g. --num-processes 8",
        )
    port = str(_free_port())
    children = []
    for rank in range(num_processes):
        env = dict(os.environ)
        values = (rank, num_processes, rank, num_processes, "127.0.0.1", port)
        env.update({key: str(value) for key, value in zip(RANK_ENV, values, strict=True)})
        children.append(subprocess.Popen([sys.executable, "-m", "scenewright", *argv], env=env))
    codes = [child.wait() for child in children]
    return max(codes, key=abs)
