"""One fake clock for every test: time moves only when the test says so, so no test sleeps.

It serves both seams the code has: `polling.Clock` (`now()` and `sleep()`, for the pollers and
waits) and the simulator's plain `clock()` callable.
"""

from __future__ import annotations

import itertools

import anyio
from anyio.lowlevel import checkpoint


async def settle() -> None:
    """Let every task that can run, run until it waits again.

    anyio's wait_all_tasks_blocked() would do this, but it sleeps 0.1 s of real time whenever a
    task is still runnable; the few hops a woken poller or waiter takes are far fewer than this.
    """
    for _ in range(50):
        await checkpoint()


class FakeClock:
    """Time moves only when the test says so; sleepers wake in order as it passes them."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    def __call__(self) -> float:
        """The simulator reads its time from a plain callable."""
        return self.time

    def advance(self, seconds: float) -> None:
        """Move time on where nothing sleeps on this clock (the simulator only reads it)."""
        assert not self._sleepers, "tasks sleep on this clock: let time pass with run_for()"
        self.time += seconds

    async def sleep(self, seconds: float) -> None:
        sleeper = (self.time + seconds, next(self._order), anyio.Event())
        self._sleepers.append(sleeper)
        try:
            await sleeper[2].wait()
        finally:
            if sleeper in self._sleepers:  # cancelled before its time
                self._sleepers.remove(sleeper)

    async def run_for(self, seconds: float) -> None:
        """Let `seconds` pass, waking each sleeper in order and letting it run before the next."""
        target = self.time + seconds
        await settle()
        while due := [sleeper for sleeper in self._sleepers if sleeper[0] <= target]:
            first = min(due)
            at, _, woken = first
            self._sleepers.remove(first)
            self.time = max(self.time, at)
            woken.set()
            await settle()
        self.time = target
        await settle()
