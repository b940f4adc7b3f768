"""A principal's submits take turns at being checked and journaled, across every process on a journal.

A principal's limits (running tasks, submits per hour) and the budgets are counted from the
journal, so a submit is first checked against it, then written down. Two submits checked at
the same moment would both see room for one more and both be sent, and each overshoot is real
money. So the step from the first check to the journal entry is the principal's alone while it
lasts: the store's `submit_lock` (PostgreSQL: an advisory lock; SQLite: a lock file beside the
journal) makes it so for every server process sharing the journal, not only for one.

This module holds what the backends share: a process's own locks (taken first, so a process
sends one waiter to the shared lock, not one per parallel submit), the lock file, and the errors
a submit is refused with. Every wait is bounded: a submit is refused, clearly and with nothing
sent, rather than left hanging on a stuck journal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from apimp_video_mcp.errors import JournalUnavailableError
from apimp_video_mcp.store.interface import describe_failure

logger = logging.getLogger(__name__)

# A lock file's holder is asked again after these pauses, doubling from the first to the last:
# short, since a turn lasts a few statements.
_FILE_LOCK_FIRST_PAUSE_SECONDS: Final = 0.001
_FILE_LOCK_LAST_PAUSE_SECONDS: Final = 0.05


def no_turn_within(journal: str, backend: str, seconds: float) -> JournalUnavailableError:
    """A submit that could not get its turn in time: nothing was sent, and why.

    The caller's message names the backend and the setting, not the database or file (a remote
    caller has no business learning either); the log names `journal` for the operator.
    """
    logger.warning("a submit lock on the task journal %s was not granted within %g s", journal, seconds)
    return JournalUnavailableError(
        f"The task journal ({backend}, APIMP_JOURNAL) did not give this submit its turn within "
        f"{seconds:g} s: other submits held it that long, or the journal is overloaded. "
        "Nothing was sent or charged; try again."
    )


def lock_failed(backend: str, exc: Exception) -> JournalUnavailableError:
    """The journal refused the lock itself (a dropped database, a folder that cannot be written)."""
    return JournalUnavailableError(
        f"The task journal ({backend}, APIMP_JOURNAL) could not take this submit's lock "
        f"({describe_failure(exc)}). Nothing was sent or charged; check APIMP_JOURNAL, then try again."
    )


def lost_turn(journal: str) -> JournalUnavailableError:
    """The shared lock may have lapsed before the submit was journaled: it is not sent."""
    logger.warning("the task journal %s lost a submit lock's connection during its check", journal)
    return JournalUnavailableError(
        "The task journal (PostgreSQL, APIMP_JOURNAL) lost its connection while this submit was being "
        "checked against your limits and budgets, so the check may have overlapped another submit. "
        "The video was NOT submitted and nothing was charged; try again."
    )


class TurnTimeoutError(Exception):
    """A wait for a submit lock (or for what it needs) passed its deadline; the backend says where."""


def seconds_left(deadline: float) -> float:
    """What is left of a deadline on anyio's clock (never negative)."""
    return max(deadline - anyio.current_time(), 0.0)


async def acquire_by(acquire: Callable[[], Awaitable[object]], deadline: float) -> None:
    """Wait for `acquire` until `deadline`, or raise TurnTimeoutError."""
    try:
        with anyio.fail_after(seconds_left(deadline)):
            await acquire()
    except TimeoutError:
        raise TurnTimeoutError from None


@dataclass
class _Held:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    users: int = 0


class KeyedLocks:
    """One in-process lock per key (a principal), forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, _Held] = {}

    @asynccontextmanager
    async def held(self, key: str, *, deadline: float) -> AsyncIterator[None]:
        """Hold the key's lock for the block; TurnTimeoutError when it is not free by `deadline`."""
        held = self._locks.setdefault(key, _Held())
        held.users += 1
        try:
            async with held_until(held.lock, deadline=deadline):
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._locks[key]

    def __len__(self) -> int:
        """How many keys are held or awaited now (the rest are forgotten)."""
        return len(self._locks)


@asynccontextmanager
async def held_until(lock: anyio.Lock | anyio.CapacityLimiter, *, deadline: float) -> AsyncIterator[None]:
    """Hold the lock (or one of the limiter's slots) for the block; TurnTimeoutError when it is not
    free by `deadline`."""
    await acquire_by(lock.acquire, deadline)
    try:
        yield
    finally:
        lock.release()


@asynccontextmanager
async def file_locked(path: Path, *, deadline: float) -> AsyncIterator[None]:
    """Hold an exclusive lock on the file at `path` (created if need be) for the block, across
    processes; TurnTimeoutError when another holds it past `deadline`.

    `flock` on a descriptor opened here: it excludes every other open of the file, in this
    process as in any other, and the system drops it when the descriptor is closed or its process
    dies. The lock is asked for without blocking and asked again after a short pause, because a
    wait blocked in a thread could not end at the deadline. Windows has no `flock`: there the block
    runs at once, and a lock of the process's own is all a submit takes (see `SqliteTaskStore`).
    (On NFS, Linux emulates `flock` with POSIX locks, which exclude other processes only: SQLite
    itself advises against a journal on a network file system.)
    """
    if sys.platform == "win32":
        yield
        return
    try:
        fd = await anyio.to_thread.run_sync(_open_lock_file, path)
    except OSError as exc:
        raise lock_failed("SQLite", exc) from exc
    try:
        pause = _FILE_LOCK_FIRST_PAUSE_SECONDS
        while not _try_flock(fd):
            if anyio.current_time() + pause > deadline:
                raise TurnTimeoutError
            await anyio.sleep(pause)
            pause = min(pause * 2, _FILE_LOCK_LAST_PAUSE_SECONDS)
        yield
    finally:
        os.close(fd)  # the lock goes with the descriptor


def _open_lock_file(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


if sys.platform != "win32":
    import fcntl

    def _try_flock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
