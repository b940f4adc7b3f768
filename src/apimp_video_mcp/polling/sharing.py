"""One status request per task at a time, however many callers ask about it.

get_status and the player view ask about a task whenever their caller does, and callers come in
crowds: ten thousand concurrent get_status calls on one task once made ten thousand upstream
requests and took the server from 76 to 448 MB. Here a caller gets, in this order:

1. the answer of the task's running poller (a wait in progress), when it is fresh;
2. the answer of the request already in flight for the task, or of one that ended while fresh;
3. a new request, run in the background so that a caller who leaves (cancelled, timed out) does
   not cut it short for the others who wait on it.

"Fresh" is `fresh_seconds` old at most (`defaults.STATUS_FRESH_SECONDS`): short enough that
nobody sees a stale status, long enough that a crowd costs one request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.abc import TaskGroup

from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.errors import UpstreamUnreachableError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.pollers import Clock

# Ended requests are forgotten once stale; the sweep runs when this many are remembered.
_SWEEP_AT: Final = 256

PolledAnswer = Callable[[str], tuple[float, TaskSnapshot] | None]
Ask = Callable[[], Awaitable[TaskSnapshot]]


@dataclass
class _Request:
    """One status request that any number of callers wait on."""

    done: anyio.Event = field(default_factory=anyio.Event)
    snapshot: TaskSnapshot | None = None
    error: Exception | None = None
    ended_at: float | None = None


class SharedStatus:
    """The status of a task for one-off questions, at most one upstream request per task at a time."""

    def __init__(self, *, clock: Clock, fresh_seconds: float, polled: PolledAnswer) -> None:
        self._clock = clock
        self._fresh_seconds = fresh_seconds
        self._polled = polled
        self._requests: dict[str, _Request] = {}
        self._group: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SharedStatus]:
        async with background_tasks() as group:
            self._group = group
            try:
                yield self
            finally:
                self._group = None

    async def get(self, task_id: str, ask: Ask, *, refresh: bool = False) -> TaskSnapshot:
        """The task's status, at most `fresh_seconds` old; a failed request's error is raised.

        `ask` makes the request when one is needed; whoever calls first asks for everyone.
        `refresh` takes no answer already given: only the request in flight, or a new one.
        """
        now = self._clock.now()
        fresh_seconds = -1.0 if refresh else self._fresh_seconds
        polled = self._polled(task_id)
        if polled is not None and now - polled[0] <= fresh_seconds:
            return polled[1]
        request = self._requests.get(task_id)
        if request is None or (request.ended_at is not None and now - request.ended_at > fresh_seconds):
            request = self._start(task_id, ask)
        await request.done.wait()
        if request.error is not None:
            # Shared by every caller: drop the traceback so raising it many times does not grow it.
            raise request.error.with_traceback(None)
        assert request.snapshot is not None
        return request.snapshot

    def _start(self, task_id: str, ask: Ask) -> _Request:
        if self._group is None:
            raise RuntimeError("the shared status requests are not running")
        if len(self._requests) >= _SWEEP_AT:
            self._sweep()
        request = self._requests[task_id] = _Request()
        self._group.start_soon(self._ask, ask, request)
        return request

    async def _ask(self, ask: Ask, request: _Request) -> None:
        try:
            request.snapshot = await ask()
        except Exception as exc:
            request.error = exc
        finally:
            if request.snapshot is None and request.error is None:  # cancelled: the server stops
                request.error = UpstreamUnreachableError("The server stopped before APIMP answered.")
            request.ended_at = self._clock.now()
            request.done.set()

    def _sweep(self) -> None:
        now = self._clock.now()
        for task_id, request in list(self._requests.items()):
            if request.ended_at is not None and now - request.ended_at > self._fresh_seconds:
                del self._requests[task_id]
