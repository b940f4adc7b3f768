"""Journal writes that must not be lost, retried in the background when the journal refuses them.

Once APIMP has created a task, its id is the receipt of money spent. If the journal cannot take
it at that moment (another process holds the file's write lock, the disk is full, the file went
read-only), the caller still gets the id at once, with a warning, and the write is tried again
here: a bounded number of times, with growing pauses, for as long as the service runs. A write
that never lands is logged with everything needed to record it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from apimp_video_mcp import defaults
from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.polling.pollers import Clock, ScaledClock
from apimp_video_mcp.store.interface import describe_failure

logger = logging.getLogger(__name__)

Write = Callable[[], Awaitable[None]]


class JournalRetry:
    """Background retries of journal writes, alive while `running()` is."""

    def __init__(
        self,
        *,
        delays_seconds: Sequence[float] = defaults.JOURNAL_RETRY_DELAYS_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        self._delays_seconds = tuple(delays_seconds)
        self._clock = clock or ScaledClock()
        self._group: anyio.abc.TaskGroup | None = None
        self._pending: dict[int, str] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Retry in the background until the block ends; what is still pending then is logged."""
        async with background_tasks() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                for what in self._pending.values():
                    logger.error("the server stopped before the task journal could record %s", what)

    def retry(self, write: Write, *, what: str) -> bool:
        """Try `write` again in the background; False when the service is not running to do it."""
        if self._group is None:
            logger.error("the task journal could not record %s, and nothing is left to retry it", what)
            return False
        self._group.start_soon(self._retry, write, what)
        return True

    async def _retry(self, write: Write, what: str) -> None:
        key = id(write)
        self._pending[key] = what
        try:
            for attempt, delay in enumerate(self._delays_seconds, start=1):
                await self._clock.sleep(delay)
                try:
                    await write()
                except Exception as exc:
                    logger.warning(
                        "journal retry %d of %d for %s failed: %s",
                        attempt,
                        len(self._delays_seconds),
                        what,
                        describe_failure(exc),
                    )
                    continue
                logger.info("the task journal recorded %s on retry %d", what, attempt)
                return
            logger.error(
                "the task journal could not record %s after %d retries; record it by hand",
                what,
                len(self._delays_seconds),
            )
        finally:
            del self._pending[key]
