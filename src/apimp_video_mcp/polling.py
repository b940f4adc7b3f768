"""Waiting for a task: poll on a schedule, keep the caller informed, stop at a deadline.

APIMP's Veo and Sora tasks offer no callbacks, so a result is found by polling. A wait always
has a deadline; running out of time is an answer (the task's current state), not an error,
so the agent can simply wait again. Progress is reported as a strictly increasing percentage
at least every heartbeat, even when APIMP's own progress stalls, because some hosts keep a
tool call alive only while progress keeps coming.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import RateLimitedError, UpstreamServerError, UpstreamUnreachableError
from apimp_video_mcp.models import TaskSnapshot

logger = logging.getLogger(__name__)

# Failures that say nothing about the task: a wait rides them out until its deadline.
TRANSIENT_ERRORS = (UpstreamServerError, UpstreamUnreachableError, RateLimitedError)

FetchStatus = Callable[[], Awaitable[TaskSnapshot]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ReportProgress(Protocol):
    async def __call__(self, progress: float, message: str) -> None: ...


class PollSchedule(Protocol):
    """Decides how long to wait before the next status query."""

    def next_interval_seconds(self, snapshot: TaskSnapshot, polls_so_far: int) -> float: ...


@dataclass(frozen=True)
class GrowingInterval:
    """Poll soon after submitting, then less often: initial * growth^n, capped."""

    initial_seconds: float = defaults.POLL_INITIAL_INTERVAL_SECONDS
    max_seconds: float = defaults.POLL_MAX_INTERVAL_SECONDS
    growth_factor: float = defaults.POLL_INTERVAL_GROWTH_FACTOR

    def next_interval_seconds(self, snapshot: TaskSnapshot, polls_so_far: int) -> float:
        return min(self.initial_seconds * self.growth_factor ** max(0, polls_so_far - 1), self.max_seconds)


class ProgressTracker:
    """Turns APIMP's progress (which may stall or be absent) into a strictly increasing 0-100 value."""

    def __init__(self) -> None:
        self.last: float | None = None

    def advance(self, snapshot: TaskSnapshot) -> float:
        value = 100.0 if snapshot.is_terminal else min(float(snapshot.progress or 0), 99.0)
        if self.last is not None and value <= self.last:
            # Creep toward 100 without reaching it while APIMP's number stands still.
            value = self.last + max((99.0 - self.last) * 0.02, 0.001)
            if value >= 100.0:
                value = math.nextafter(self.last, 100.0)
        self.last = value
        return value


@dataclass
class WaitOutcome:
    snapshot: TaskSnapshot
    timed_out: bool
    waited_seconds: float
    last_error: str | None = None


def describe(snapshot: TaskSnapshot, elapsed_seconds: float) -> str:
    """A one-line progress message for the host to show."""
    minutes, seconds = divmod(int(elapsed_seconds), 60)
    elapsed = f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
    progress = f" {snapshot.progress}%" if snapshot.progress is not None and not snapshot.is_terminal else ""
    return f"{snapshot.status.replace('_', ' ')}{progress}, waited {elapsed}"


async def wait_for_task(
    fetch: FetchStatus,
    *,
    timeout_seconds: float,
    schedule: PollSchedule,
    report: ReportProgress,
    heartbeat_seconds: float = defaults.PROGRESS_HEARTBEAT_SECONDS,
    clock: Clock = anyio.current_time,
    sleep: Sleep = anyio.sleep,
) -> WaitOutcome:
    """Poll until the task is finished or failed, or the deadline passes (then poll once more at it).

    The first query is made at once and its errors propagate (an unknown task is a real error);
    later transient failures are ridden out, since the task is unaffected by them. Cancellation
    (the client gave up) stops everything immediately: nothing here swallows it.
    """
    start = clock()
    deadline = start + timeout_seconds
    tracker = ProgressTracker()
    snapshot = await fetch()
    polls, last_error = 1, None
    await report(tracker.advance(snapshot), describe(snapshot, 0.0))
    while not snapshot.is_terminal and clock() < deadline:
        next_poll = min(clock() + schedule.next_interval_seconds(snapshot, polls), deadline)
        while (now := clock()) < next_poll:
            await sleep(min(heartbeat_seconds, next_poll - now))
            if clock() < next_poll:
                await report(tracker.advance(snapshot), describe(snapshot, clock() - start))
        try:
            with anyio.fail_after(max(deadline - clock(), 0.0) + heartbeat_seconds):
                snapshot = await fetch()
            last_error = None
        except TRANSIENT_ERRORS as exc:
            last_error = str(exc)
            logger.info("status check for %s failed, will retry: %s", snapshot.task_id, exc)
        except TimeoutError:
            last_error = "the status check did not answer before the wait's deadline"
        polls += 1
        await report(tracker.advance(snapshot), describe(snapshot, clock() - start))
    return WaitOutcome(
        snapshot=snapshot,
        timed_out=not snapshot.is_terminal,
        waited_seconds=clock() - start,
        last_error=last_error,
    )
