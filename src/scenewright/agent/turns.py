"""Turns that take turns: one at a time per history, and a cancel switch per running turn.

LangGraph starts each run from the thread's latest checkpoint. Two runs that start before either
finishes both start from the same one, and the later write wins: one turn vanishes from the
history (two ``chat`` processes on one ``--history`` file kept 3 of 6 turns). Holding one lock per
history for the length of a turn makes every run start from the one before it. Across processes
that lock is a lock file beside the SQLite history (``filelock``, which works on every platform,
rather than our own ``fcntl`` code); within a process a plain lock per history path backs it up,
because a file lock is per open file, not per thread, on some systems.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


class TurnLock:
    """Serialises the turns written to one history: threads of a process and other processes.

    ``history`` None (an in-memory history) needs no file: only this process can see it.
    """

    def __init__(self, history: Path | None) -> None:
        if history is None:
            self._thread_lock = threading.Lock()
            self._file_lock: FileLock | None = None
        else:
            resolved = history.expanduser().resolve()
            self._thread_lock = _process_lock(str(resolved))
            # thread_local=False: the lock may be released by the thread that closes a stream
            # (a web request abandoned mid-turn), not only by the one that took it.
            self._file_lock = FileLock(str(resolved) + ".lock", thread_local=False)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the history for one turn; waits while another thread or process holds it."""
        with self._thread_lock:
            if self._file_lock is None:
                yield
                return
            with self._file_lock:
                yield


class CancelSwitches:
    """One cancel flag per running turn, keyed by conversation thread.

    A flag is fresh for every turn, so a cancel pressed after a turn ended does not cancel the next.
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._guard = threading.Lock()

    @contextmanager
    def turn(self, thread: str) -> Iterator[threading.Event]:
        """Register a fresh flag for ``thread`` while its turn runs."""
        flag = threading.Event()
        with self._guard:
            self._flags[thread] = flag
        try:
            yield flag
        finally:
            with self._guard:
                if self._flags.get(thread) is flag:
                    del self._flags[thread]

    def cancel(self, thread: str) -> bool:
        """Cancel ``thread``'s running turn; False when none is running."""
        with self._guard:
            flag = self._flags.get(thread)
        if flag is None:
            return False
        flag.set()
        return True

    def is_cancelled(self, thread: str) -> bool:
        with self._guard:
            flag = self._flags.get(thread)
        return flag is not None and flag.is_set()
