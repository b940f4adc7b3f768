"""Polling: one poller per task, an adaptive schedule, and waits that always end.

APIMP's Veo tasks offer no callbacks, so every result is found by polling, and waiting
is what this server spends its life doing. Three pieces:

- `AdaptiveSchedule` decides when to ask next: early checks in a task's first seconds (a refused
  prompt fails fast), then half the estimated time left: rarely while completion is far, every
  `floor` seconds once it is near. The estimate comes from the typical duration of such a task
  (learned from the journal's history, see `durations`), pulled in by progress where it moves;
  progress never delays a poll, since Veo may report 0 until the end, stall, or jump.
- `PollerHub` runs at most one poller per task id in the process. Every waiter on the task
  follows the same stream of status requests; waiters come and go freely, one waiter's
  cancellation never disturbs the others, and the poller stops when nobody follows it.
- `wait_for_task` is one waiter: it follows the task until it ends or the deadline passes, and
  reports a strictly increasing progress at least every heartbeat, even while APIMP's own
  progress stands still, because some hosts keep a tool call alive only while progress flows.

Time comes from one clock/sleep seam, so tests run on a fake clock and benchmarks on a fast one.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import anyio
from anyio.abc import TaskGroup

from apimp_video_mcp import defaults
from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.errors import TRANSIENT_ERRORS, RateLimitedError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.coordination import Coordination, SoloCoordination
from apimp_video_mcp.store.interface import describe_failure

logger = logging.getLogger(__name__)

FetchStatus = Callable[[str], Awaitable[TaskSnapshot]]

# Whose turn it is to ask APIMP about a task: this instance's ("ask"); another's, whose news it
# followed until it was time to claim the task again ("followed"); nobody's, the task ended ("ended").
Turn = Literal["ask", "followed", "ended"]


class Clock(Protocol):
    """Where time comes from: real time in the server, faster time in benchmarks, fake in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class ScaledClock:
    """Time `scale` times faster than real time: a 3-minute render polled in 6 s at scale 30."""

    scale: float = 1.0

    def now(self) -> float:
        return anyio.current_time() * self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.scale)


class ReportProgress(Protocol):
    async def __call__(self, progress: float, message: str) -> None: ...


# --- When to poll ----------------------------------------------------------------------------


@dataclass
class Observation:
    at: float
    progress: int


@dataclass
class PollHistory:
    """What one poller has seen of its task: the input of the schedule."""

    typical_duration_seconds: float
    first_seen: float
    first_progress: Observation | None = None  # the first moment progress was above zero
    recent: list[Observation] = field(default_factory=list)  # the last few moments it was
    unchanged_polls: int = 0
    last_progress: int | None = None

    def add(self, at: float, snapshot: TaskSnapshot) -> None:
        progress = snapshot.progress
        # Only reported progress can stall; a gateway that reports none is paced by the typical time.
        self.unchanged_polls = self.unchanged_polls + 1 if progress and progress == self.last_progress else 0
        self.last_progress = progress
        if progress:
            observation = Observation(at, progress)
            self.first_progress = self.first_progress or observation
            self.recent = [*self.recent[-(RECENT_OBSERVATIONS - 1) :], observation]


# Enough to find the latest change of a whole-percent progress, few enough to stay cheap.
RECENT_OBSERVATIONS: Final = 4


def _seconds_to_100(since: Observation, last: Observation) -> float | None:
    """At the rate progress grew from `since` to `last`, how long from `last` to 100%."""
    if last.progress <= since.progress or last.at <= since.at:
        return None
    return (100 - last.progress) * (last.at - since.at) / (last.progress - since.progress)


def remaining_by_time(history: PollHistory, now: float) -> float:
    """The typical duration minus the time elapsed; past it, a fraction of the task's age again."""
    elapsed = now - history.first_seen
    typical = history.typical_duration_seconds
    return typical - elapsed if elapsed < typical else OVERDUE_FRACTION * elapsed


# A task past its typical duration may need this fraction of its age again: small enough that a
# task a little slower than usual is still seen within seconds of its end.
OVERDUE_FRACTION: Final = 0.15


def estimate_remaining_seconds(history: PollHistory, now: float) -> float:
    """Seconds until the task is likely done; 0 when it is due or overdue.

    Two estimates, and the sooner one is believed (polling a little early costs a request,
    polling late costs the user's time):

    - by time: the typical duration (learned from this server's history, see `durations`) minus
      the time elapsed; once that has passed, the task may need a quarter of its age again;
    - by progress, when it moves: extrapolated at the rate of its latest change and at its
      average rate since first seen. Progress is only ever a reason to look sooner, never later:
      Veo reports no percentage, so a gateway may show 0 until the end, stall, or jump.
    """
    by_time = remaining_by_time(history, now)
    if history.recent:
        last = history.recent[-1]
        earlier_change = next((obs for obs in reversed(history.recent) if obs.progress < last.progress), None)
        candidates = [
            estimate
            for since in (earlier_change, history.first_progress)
            if since is not None and (estimate := _seconds_to_100(since, last)) is not None
        ]
        if candidates:
            return max(0.0, min(by_time, min(candidates) - (now - last.at)))
    return by_time


# Progress that has not moved for this many polls at the floor is stalled, not slow: whole-percent
# steps of a long task can take two or three floor intervals each.
STALLED_AFTER_POLLS: Final = 4


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Poll at a fraction of the estimated time left, between a floor and a ceiling.

    Closing a fixed fraction of the distance each time costs a handful of requests on the way and
    lands the polls `floor` seconds apart when completion is near, so the finish is noticed about
    floor/2 after it happens on average. Early on the delay is also at most a fraction of the
    task's age, so an end in its first seconds is seen within about a second or two. Stalled
    progress stretches the interval (a task stuck at 99% is not polled at the floor for minutes),
    but never beyond what the time estimate alone would allow.
    """

    floor_seconds: float = defaults.POLL_MIN_INTERVAL_SECONDS
    ceiling_seconds: float = defaults.POLL_MAX_INTERVAL_SECONDS
    # Half the time left: the estimate by time is a typical value, not a promise, and progress
    # (only ever used to look sooner) already pulls the polls in where it moves.
    approach_fraction: float = 1 / 2
    jitter_fraction: float = 0.1
    stall_growth_factor: float = 1.5
    # Early on, the delay is at most this fraction of the task's age (polls at 0, 1, 2, 3, 4.5,
    # 6.8, 10 s ...): a task that fails in its first seconds is seen within about a second or two.
    early_fraction: float = 1 / 2

    def next_delay_seconds(self, history: PollHistory, now: float, rng: random.Random) -> float:
        remaining = estimate_remaining_seconds(history, now)
        delay = remaining * self.approach_fraction
        if history.unchanged_polls >= STALLED_AFTER_POLLS:
            # Stalled progress is no reason to look sooner than the time estimate says.
            stalled_for = history.unchanged_polls - STALLED_AFTER_POLLS + 1
            stalled = self.floor_seconds * self.stall_growth_factor**stalled_for
            delay = max(delay, min(stalled, remaining_by_time(history, now) * self.approach_fraction))
        # Early checks: a task that ends in its first seconds (a refused prompt) is seen within
        # about a second or two, whatever the estimate says.
        delay = min(delay, self.early_fraction * (now - history.first_seen))
        delay = min(max(delay, self.floor_seconds), self.ceiling_seconds)
        # Jitter only ever shortens the wait, so it spreads many pollers without adding latency.
        return delay * (1 - self.jitter_fraction * rng.random())

    def backoff_seconds(self, failures: int, retry_after_seconds: float | None) -> float:
        """After a failed poll: APIMP's Retry-After if it gave one, else doubling from the floor."""
        if retry_after_seconds is not None:
            return max(retry_after_seconds, self.floor_seconds)
        return min(self.floor_seconds * 2.0**failures, self.ceiling_seconds)


# --- One poller per task ---------------------------------------------------------------------


class TaskPoller:
    """Polls one task for everyone following it, and publishes each status it sees."""

    def __init__(self, task_id: str, history: PollHistory) -> None:
        self.task_id = task_id
        self.history = history
        self.latest: TaskSnapshot | None = None
        self.answered_at: float | None = None  # when `latest` arrived
        self.version = 0
        self.error: Exception | None = None  # a permanent failure: followers raise it
        self.last_transient_error: str | None = None
        # Since when APIMP has failed every request (the start of the first failed one); None
        # while it answers. A request that never comes back is judged by `silent_since`.
        self.failing_since: float | None = None
        self.request_started_at: float | None = None  # while a request is pending
        self.followers = 0
        self.polls = 0
        self._changed = anyio.Event()
        self.scope = anyio.CancelScope()

    @property
    def finished(self) -> bool:
        return self.error is not None or (self.latest is not None and self.latest.is_terminal)

    def publish(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def changed_since(self, version: int) -> None:
        """Return once there is news newer than `version` (a status, or a failure)."""
        if self.version == version:
            await self._changed.wait()

    def silent_since(self, now: float) -> float | None:
        """Since when APIMP has given no answer: failing requests, or one pending far too long."""
        if self.failing_since is not None:
            return self.failing_since
        started = self.request_started_at
        if started is not None and now - started >= defaults.STATUS_ANSWER_OVERDUE_SECONDS:
            return started
        return None


class PollerHub:
    """All pollers of the process; run it for the server's lifetime with `async with`."""

    def __init__(
        self,
        fetch: FetchStatus,
        *,
        schedule: AdaptiveSchedule,
        typical_duration: Callable[[str], float],
        clock: Clock | None = None,
        rng: random.Random | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self._fetch = fetch
        # Other instances sharing the store (a cluster), or none: who may ask APIMP about a task.
        self._coordination = coordination or SoloCoordination()
        self.schedule = schedule
        self._typical_duration = typical_duration
        self.clock = clock or ScaledClock()
        self._rng = rng or random.Random()
        self._pollers: dict[str, TaskPoller] = {}
        self._histories: dict[str, PollHistory] = {}
        self._group: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PollerHub]:
        async with self._coordination.running(), background_tasks() as group:
            self._group = group
            try:
                yield self
            finally:
                self._group = None

    @property
    def active_pollers(self) -> int:
        return len(self._pollers)

    def latest_answer(self, task_id: str) -> tuple[float, TaskSnapshot] | None:
        """When the task's running poller last heard from APIMP, and what; None if nobody polls it."""
        poller = self._pollers.get(task_id)
        if poller is None or poller.latest is None or poller.answered_at is None:
            return None
        return poller.answered_at, poller.latest

    @asynccontextmanager
    async def follow(
        self, task_id: str, *, model: str | None = None, typical_seconds: float | None = None
    ) -> AsyncIterator[TaskPoller]:
        """Follow a task's poller, starting one if nobody polls it yet; leave it on exit.

        `typical_seconds` is how long such a task usually takes (learned from the journal); without
        it, the hub's `typical_duration` of the model is assumed.
        """
        poller = self._poller_for(task_id, model, typical_seconds)
        poller.followers += 1
        try:
            yield poller
        finally:
            poller.followers -= 1
            if poller.followers == 0:
                poller.scope.cancel()  # nobody listens: stop asking APIMP
                if self._pollers.get(task_id) is poller:
                    del self._pollers[task_id]
                if poller.finished:
                    self._histories.pop(task_id, None)

    def _poller_for(self, task_id: str, model: str | None, typical_seconds: float | None) -> TaskPoller:
        """The one place a poller starts in this process: the task's running poller, or a new one.

        No await between the look-up and the start, so two followers never start two pollers here;
        across instances, the poller itself claims the task's lease before each request.
        """
        poller = self._pollers.get(task_id)
        if poller is not None:
            return poller
        if self._group is None:
            raise RuntimeError("the poller hub is not running")
        typical = typical_seconds if typical_seconds is not None else self._typical_duration(model or "")
        history = self._histories.get(task_id) or PollHistory(
            typical_duration_seconds=typical, first_seen=self.clock.now()
        )
        self._histories[task_id] = history
        poller = self._pollers[task_id] = TaskPoller(task_id, history)
        self._group.start_soon(self._poll_then_release, poller)
        return poller

    async def _poll_then_release(self, poller: TaskPoller) -> None:
        """Poll; then give the task back to the other instances (if any), even when cancelled.

        A poller runs in the hub's task group, beside every other task's: whatever goes wrong in
        it ends this task's wait with the error, never the hub (and with it the server).
        """
        try:
            await self._poll(poller)
        except Exception as exc:
            logger.exception("polling %s stopped on an unexpected error", poller.task_id)
            poller.error = exc
            poller.publish()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_TIMEOUT_SECONDS):
                try:
                    await self._coordination.release(poller.task_id)
                except Exception:  # the lease lapses by itself
                    logger.warning("giving back the lease of %s failed", poller.task_id, exc_info=True)

    async def _poll(self, poller: TaskPoller) -> None:
        """Ask, publish, sleep as the schedule says; failures back off (Retry-After wins).

        Where another instance holds the task's lease, follow what it writes to the store instead.
        """
        # A poller starts as if it had followed: another instance may have seen the task end already.
        failures, following = 0, True
        with poller.scope:
            while True:
                try:
                    turn = await self._take_turn(poller, following=following)
                except Exception as exc:  # the shared store is away: nobody may ask APIMP until it is back
                    failures += 1
                    poller.last_transient_error = f"the task journal failed: {describe_failure(exc)}"
                    logger.warning("polling %s: %s; backing off", poller.task_id, poller.last_transient_error)
                    poller.publish()
                    await self.clock.sleep(self.schedule.backoff_seconds(failures, None))
                    continue
                if turn == "ended":
                    return
                following = turn == "followed"
                if following:
                    continue
                started = poller.request_started_at = self.clock.now()
                try:
                    snapshot = await self._fetch(poller.task_id)
                except TRANSIENT_ERRORS as exc:
                    failures += 1
                    poller.request_started_at = None
                    poller.last_transient_error = str(exc)
                    if poller.failing_since is None:
                        poller.failing_since = started
                    retry_after = exc.retry_after_seconds if isinstance(exc, RateLimitedError) else None
                    logger.info("polling %s failed (%s); backing off", poller.task_id, exc)
                    poller.publish()
                    await self.clock.sleep(self.schedule.backoff_seconds(failures, retry_after))
                    continue
                except Exception as exc:  # a permanent failure: unknown task, bad key, ...
                    poller.request_started_at = None
                    poller.error = exc
                    poller.publish()
                    return
                failures = 0
                poller.polls += 1
                poller.request_started_at = None
                poller.last_transient_error = None
                poller.failing_since = None
                self._publish(poller, snapshot)
                if snapshot.is_terminal:
                    return
                await self.clock.sleep(
                    self.schedule.next_delay_seconds(poller.history, self.clock.now(), self._rng)
                )

    async def _take_turn(self, poller: TaskPoller, *, following: bool) -> Turn:
        """Settle with the other instances who asks APIMP now (see `Turn`)."""
        if not await self._coordination.claim(poller.task_id):
            return "ended" if await self._follow_the_owner(poller) else "followed"
        if following and await self._ended_meanwhile(poller):
            return "ended"  # the last owner saw it end, then let go of it
        return "ask"

    async def _follow_the_owner(self, poller: TaskPoller) -> bool:
        """Publish what the owning instance writes until it is time to claim again; True once ended."""
        while True:
            if await self._ended_meanwhile(poller):
                return True
            if not await self._coordination.wait_for_news(poller.task_id):
                return False

    async def _ended_meanwhile(self, poller: TaskPoller) -> bool:
        """Publish the status another instance last wrote, if it is news; True if the task ended."""
        snapshot = await self._coordination.read(poller.task_id)
        if snapshot is None or snapshot == poller.latest:
            return False
        self._publish(poller, snapshot)
        return snapshot.is_terminal

    def _publish(self, poller: TaskPoller, snapshot: TaskSnapshot) -> None:
        poller.latest, poller.answered_at = snapshot, self.clock.now()
        poller.history.add(self.clock.now(), snapshot)
        poller.publish()


# Giving a lease back is a courtesy (it lapses anyway): it must not hold up a stopping poller.
RELEASE_TIMEOUT_SECONDS: Final = 2.0


# --- One waiter --------------------------------------------------------------------------------


class ProgressTracker:
    """Turns APIMP's progress (which may stall or be absent) into a strictly increasing 0-100 value."""

    def __init__(self) -> None:
        self.last: float | None = None

    def advance(self, snapshot: TaskSnapshot | None) -> float:
        """The next value: APIMP's progress if it moved, else a creep (also with no status at all)."""
        if snapshot is None:
            value = 0.0
        else:
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
    """How a wait ended. `snapshot` is None when APIMP never answered before the deadline."""

    snapshot: TaskSnapshot | None
    timed_out: bool
    waited_seconds: float
    last_error: str | None = None
    # How long APIMP had given no answer when the wait ended (failing, or not answering at all).
    unreachable_for_seconds: float | None = None


async def at_most(clock: Clock, seconds: float, wait: Callable[[], Awaitable[None]]) -> None:
    """Await `wait()` until it returns or `seconds` of the clock pass, whichever comes first."""
    async with anyio.create_task_group() as group:

        async def done() -> None:
            await wait()
            group.cancel_scope.cancel()

        async def timeout() -> None:
            await clock.sleep(seconds)
            group.cancel_scope.cancel()

        group.start_soon(done)
        group.start_soon(timeout)


async def _news_or_timeout(poller: TaskPoller, seen: int, clock: Clock, seconds: float) -> None:
    """Return on the poller's next news or after `seconds` of the clock, whichever comes first."""
    await at_most(clock, seconds, lambda: poller.changed_since(seen))


def _elapsed(seconds: float) -> str:
    minutes, whole = divmod(int(seconds), 60)
    return f"{minutes}m{whole:02d}s" if minutes else f"{whole}s"


def describe(
    snapshot: TaskSnapshot | None, elapsed_seconds: float, silent_seconds: float | None = None
) -> str:
    """A one-line progress message for the host to show."""
    if snapshot is None:
        state = "waiting for APIMP's first answer"
    else:
        shown = snapshot.progress is not None and not snapshot.is_terminal
        progress = f" {snapshot.progress}%" if shown else ""
        state = f"{snapshot.status.replace('_', ' ')}{progress}"
    if silent_seconds is not None and (snapshot is None or not snapshot.is_terminal):
        state += f" (APIMP unreachable for {_elapsed(silent_seconds)})"
    return f"{state}, waited {_elapsed(elapsed_seconds)}"


async def wait_for_task(
    hub: PollerHub,
    task_id: str,
    *,
    timeout_seconds: float,
    report: ReportProgress,
    heartbeat_seconds: float = defaults.PROGRESS_INTERVAL_SECONDS,
    model: str | None = None,
    typical_seconds: float | None = None,
) -> WaitOutcome:
    """Follow the task until it is finished or failed, or the deadline passes, whichever is first.

    The deadline holds whatever APIMP does: down, rate limiting, or a request that never comes
    back. Progress is reported at every status and at least every heartbeat from the start,
    also before the first answer. A permanent failure (an unknown task, a refused key) is
    raised; transient failures are ridden out by the poller. Cancellation (the client gave up)
    leaves at once, and the poller stops if this was its last follower.
    """
    clock = hub.clock
    start = clock.now()
    deadline = start + timeout_seconds
    tracker = ProgressTracker()
    snapshot: TaskSnapshot | None = None
    async with hub.follow(task_id, model=model, typical_seconds=typical_seconds) as poller:
        seen = -1
        while True:
            await _news_or_timeout(
                poller, seen, clock, max(0.0, min(heartbeat_seconds, deadline - clock.now()))
            )
            if poller.error is not None:
                raise poller.error
            seen = poller.version
            snapshot = poller.latest
            now = clock.now()
            silent_since = poller.silent_since(now)
            silent_for = None if silent_since is None else now - silent_since
            await report(tracker.advance(snapshot), describe(snapshot, now - start, silent_for))
            if (snapshot is not None and snapshot.is_terminal) or now >= deadline:
                break
    return WaitOutcome(
        snapshot=snapshot,
        timed_out=snapshot is None or not snapshot.is_terminal,
        waited_seconds=clock.now() - start,
        last_error=poller.last_transient_error,
        unreachable_for_seconds=silent_for,
    )
