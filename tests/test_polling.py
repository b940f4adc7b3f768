"""The adaptive schedule and the shared pollers, on a fake clock: deterministic, no real waiting."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import pytest

from apimp_video_mcp.errors import RateLimitedError, TaskNotFoundError, UpstreamServerError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.pollers import (
    AdaptiveSchedule,
    PollerHub,
    PollHistory,
    ProgressTracker,
    estimate_remaining_seconds,
    wait_for_task,
)
from apimp_video_mcp.simulator.progress import PROGRESS_SHAPES, ProgressShape, progress_at
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio


def snapshot(status: str, progress: int | None = None, task_id: str = "task_1") -> TaskSnapshot:
    return TaskSnapshot.from_wire({"task_id": task_id, "status": status, "progress": progress})


class FakeUpstream:
    """A task that finishes at `finish_at` on the fake clock, with linear progress; counts polls."""

    def __init__(self, clock: FakeClock, finish_at: float = 100.0) -> None:
        self.clock = clock
        self.finish_at = finish_at
        self.polls: list[float] = []
        self.failures: list[Exception] = []

    async def __call__(self, task_id: str) -> TaskSnapshot:
        self.polls.append(self.clock.now())
        if self.failures:
            raise self.failures.pop(0)
        if self.clock.now() >= self.finish_at:
            return snapshot("finished", 100, task_id)
        return snapshot("running", int(100 * self.clock.now() / self.finish_at), task_id)


@asynccontextmanager
async def hub_for(upstream: Callable[[str], object], clock: FakeClock) -> AsyncIterator[PollerHub]:
    hub = PollerHub(
        upstream,  # type: ignore[arg-type]
        schedule=AdaptiveSchedule(floor_seconds=1.0, ceiling_seconds=20.0, jitter_fraction=0.0),
        typical_duration=lambda model: 60.0,
        clock=clock,
        rng=random.Random(0),
    )
    async with hub.running():
        yield hub


class Progress:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.reports: list[tuple[float, float]] = []

    async def __call__(self, progress: float, message: str) -> None:
        self.reports.append((self.clock.now(), progress))


# --- The schedule ------------------------------------------------------------------------------


def history(*points: tuple[float, int | None], typical: float = 60.0) -> PollHistory:
    seen = PollHistory(typical_duration_seconds=typical, first_seen=0.0)
    for at, progress in points:
        seen.add(at, snapshot("running", progress))
    return seen


def test_without_progress_the_typical_duration_sets_the_pace() -> None:
    assert estimate_remaining_seconds(history((0.0, None)), now=10.0) == 50.0
    assert estimate_remaining_seconds(history((0.0, 0), (30.0, 0)), now=30.0) == 30.0
    # Overdue: a fraction of its age again, so a task a little slower than usual is seen soon.
    assert estimate_remaining_seconds(history((0.0, None)), now=100.0) == pytest.approx(15.0)


def test_moving_progress_pulls_the_estimate_in_but_never_pushes_it_out() -> None:
    seen = history((0.0, 10), (10.0, 20), (20.0, 30), typical=1000.0)

    assert estimate_remaining_seconds(seen, now=20.0) == pytest.approx(70.0)  # at its recent rate
    assert estimate_remaining_seconds(seen, now=30.0) == pytest.approx(60.0)
    slow_progress = history((0.0, 10), (10.0, 20), (20.0, 30), typical=60.0)
    assert estimate_remaining_seconds(slow_progress, now=20.0) == pytest.approx(40.0)  # time says sooner


def test_the_delay_is_half_the_time_left_between_floor_and_ceiling_and_short_early_on() -> None:
    schedule = AdaptiveSchedule(floor_seconds=1.5, ceiling_seconds=30.0, jitter_fraction=0.0)
    rng = random.Random(0)

    def delay(*points: tuple[float, int | None], now: float, typical: float = 1000.0) -> float:
        return schedule.next_delay_seconds(history(*points, typical=typical), now, rng)

    assert delay((100.0, 10), (120.0, 12), now=120.0) == 30.0  # far: the ceiling
    assert delay((100.0, 60), (110.0, 80), now=110.0) == pytest.approx(5.0)  # half of the 10 s left
    assert delay((100.0, 90), (110.0, 99), now=110.0) == 1.5  # near: the floor
    assert delay((0.0, None), now=4.0, typical=60.0) == 2.0  # early checks: half the task's age
    assert delay((0.0, None), now=0.0, typical=60.0) == 1.5  # and never below the floor


def test_progress_stalled_near_the_end_stretches_the_interval() -> None:
    schedule = AdaptiveSchedule(floor_seconds=1.0, ceiling_seconds=30.0, jitter_fraction=0.0)
    stalled = history((0.0, 90), (5.0, 99))
    delays = []
    for second in range(6, 12):
        stalled.add(float(second), snapshot("running", 99))
        delays.append(schedule.next_delay_seconds(stalled, float(second), random.Random(0)))

    assert delays[:3] == [1.0, 1.0, 1.0]  # whole-percent steps can take a few floor intervals
    assert all(later > earlier for earlier, later in itertools.pairwise(delays[2:]))


def test_jitter_only_ever_shortens_the_delay() -> None:
    schedule = AdaptiveSchedule(floor_seconds=1.0, ceiling_seconds=30.0, jitter_fraction=0.1)
    rng = random.Random(3)
    delays = [schedule.next_delay_seconds(history((0.0, None)), 40.0, rng) for _ in range(200)]

    assert all(9.0 <= delay <= 10.0 for delay in delays)  # half of the 20 s left of the 60 s expected
    assert len(set(delays)) > 100


def test_backoff_honours_retry_after_and_doubles_otherwise() -> None:
    schedule = AdaptiveSchedule(floor_seconds=1.0, ceiling_seconds=20.0)

    assert schedule.backoff_seconds(1, retry_after_seconds=7.0) == 7.0
    assert [schedule.backoff_seconds(n, None) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


@dataclass(frozen=True)
class PaperTask:
    duration: float
    shape: ProgressShape
    fails: bool = False


def replay(
    task: PaperTask, schedule: AdaptiveSchedule, typical: float, rng: random.Random
) -> tuple[float, int]:
    """Poll one task on paper, its progress drawn as the simulator draws it (no queue phase).

    Returns how late its end was noticed and how many polls it took.
    """
    seen = PollHistory(typical_duration_seconds=typical, first_seen=0.0)
    now, polls = 0.0, 0
    while True:
        polls += 1
        if now >= task.duration:
            return now - task.duration, polls
        seen.add(now, snapshot("running", progress_at(task.shape, now / task.duration)))
        now += schedule.next_delay_seconds(seen, now, rng)


def paper_population(rng: random.Random, size: int) -> list[PaperTask]:
    """Every progress shape; 3 s to 6 min around a 90 s typical time; a tenth fail in seconds."""
    tasks = []
    for _ in range(size):
        shape = rng.choice(PROGRESS_SHAPES)
        if rng.random() < 0.1:
            tasks.append(PaperTask(rng.uniform(2.0, 6.0), shape, fails=True))
        else:
            tasks.append(PaperTask(rng.triangular(3.0, 360.0, 90.0), shape))
    return tasks


@pytest.mark.parametrize("seed", range(3))
def test_over_every_shape_fast_failures_are_seen_within_2_s_and_half_the_ends_within_1_s(
    seed: int,
) -> None:
    rng = random.Random(seed)
    schedule = AdaptiveSchedule(floor_seconds=1.0, ceiling_seconds=30.0)
    tasks = paper_population(rng, 300)

    results = [replay(task, schedule, 90.0, rng) for task in tasks]

    latencies = sorted(latency for latency, _ in results)
    assert latencies[len(latencies) // 2] <= 1.0
    assert max(latency for (latency, _), task in zip(results, tasks, strict=True) if task.fails) <= 2.0
    fixed_two_second_polls = sum(math.ceil(task.duration / 2.0) + 1 for task in tasks)
    assert sum(polls for _, polls in results) <= fixed_two_second_polls / 2


# --- Shared pollers and waiters ----------------------------------------------------------------


async def test_many_waiters_on_one_task_share_one_stream_of_requests() -> None:
    clock = FakeClock()
    upstream = FakeUpstream(clock, finish_at=50.0)
    outcomes = []
    async with hub_for(upstream, clock) as hub, anyio.create_task_group() as group:

        async def waiter() -> None:
            outcomes.append(
                await wait_for_task(hub, "task_1", timeout_seconds=1000.0, report=Progress(clock))
            )

        for _ in range(10):
            group.start_soon(waiter)
        for _ in range(60):
            await clock.run_for(1.0)

    assert len(outcomes) == 10
    assert all(outcome.snapshot and outcome.snapshot.status == "finished" for outcome in outcomes)
    assert len(upstream.polls) == len(set(upstream.polls)), "never two requests at the same moment"
    assert len(upstream.polls) < 20  # one waiter's worth: early checks, then the approach to 50 s


async def test_a_cancelled_waiter_leaves_the_others_undisturbed_and_the_last_one_stops_the_poller() -> None:
    clock = FakeClock()
    upstream = FakeUpstream(clock, finish_at=10_000.0)
    async with hub_for(upstream, clock) as hub, anyio.create_task_group() as group:
        first, second = anyio.CancelScope(), anyio.CancelScope()

        async def waiter(scope: anyio.CancelScope, reports: Progress) -> None:
            with scope:
                await wait_for_task(hub, "task_1", timeout_seconds=10_000.0, report=reports)

        first_reports, second_reports = Progress(clock), Progress(clock)
        group.start_soon(waiter, first, first_reports)
        group.start_soon(waiter, second, second_reports)
        await clock.run_for(30.0)
        first.cancel()
        await clock.run_for(30.0)
        polls_with_one_waiter = len(upstream.polls)
        reports_before = len(second_reports.reports)
        await clock.run_for(60.0)

        assert hub.active_pollers == 1
        assert len(upstream.polls) > polls_with_one_waiter, "the poller goes on for the remaining waiter"
        assert len(second_reports.reports) > reports_before
        second.cancel()
        await clock.run_for(1.0)
        polls_at_stop = len(upstream.polls)
        await clock.run_for(600.0)

    assert hub.active_pollers == 0
    assert len(upstream.polls) == polls_at_stop, "nobody waits: nobody polls"


async def test_a_waiter_that_arrives_later_gets_the_latest_state_at_once() -> None:
    clock = FakeClock()
    upstream = FakeUpstream(clock, finish_at=10_000.0)
    async with hub_for(upstream, clock) as hub, anyio.create_task_group() as group:
        group.start_soon(lambda: wait_for_task(hub, "task_1", timeout_seconds=100.0, report=Progress(clock)))
        await clock.run_for(40.0)
        polls = len(upstream.polls)
        late = Progress(clock)
        group.start_soon(lambda: wait_for_task(hub, "task_1", timeout_seconds=5.0, report=late))
        await clock.run_for(0.0)

        assert late.reports, "the latest state is reported without waiting for a new poll"
        assert len(upstream.polls) == polls
        group.cancel_scope.cancel()


async def test_a_wait_times_out_with_the_latest_state_and_heartbeats_meanwhile() -> None:
    clock = FakeClock()
    upstream = FakeUpstream(clock, finish_at=10_000.0)
    reports = Progress(clock)
    outcomes = []
    async with hub_for(upstream, clock) as hub, anyio.create_task_group() as group:

        async def waiter() -> None:
            outcomes.append(
                await wait_for_task(
                    hub, "task_1", timeout_seconds=45.0, report=reports, heartbeat_seconds=5.0
                )
            )

        group.start_soon(waiter)
        for _ in range(50):
            await clock.run_for(1.0)

    [outcome] = outcomes
    assert outcome.timed_out
    assert outcome.waited_seconds == pytest.approx(45.0)
    times = [at for at, _ in reports.reports]
    values = [value for _, value in reports.reports]
    assert all(later > earlier for earlier, later in itertools.pairwise(values))
    assert all(later - earlier <= 5.0 for earlier, later in itertools.pairwise(times))


async def test_transient_failures_are_ridden_out_and_permanent_ones_are_raised() -> None:
    clock = FakeClock()
    upstream = FakeUpstream(clock, finish_at=20.0)
    upstream.failures = [
        UpstreamServerError(502, "bad gateway"),
        RateLimitedError("slow", retry_after_seconds=9.0),
    ]
    outcomes = []
    async with hub_for(upstream, clock) as hub, anyio.create_task_group() as group:

        async def waiter() -> None:
            outcomes.append(
                await wait_for_task(hub, "task_1", timeout_seconds=1000.0, report=Progress(clock))
            )

        group.start_soon(waiter)
        for _ in range(60):
            await clock.run_for(1.0)

    assert outcomes[0].snapshot is not None
    assert outcomes[0].snapshot.status == "finished"
    assert upstream.polls[:3] == [0.0, 2.0, 11.0]  # backoff from the floor, then Retry-After

    upstream.failures = [TaskNotFoundError("task_2", "task not found")]
    async with hub_for(upstream, clock) as hub:
        with pytest.raises(TaskNotFoundError):
            await wait_for_task(hub, "task_2", timeout_seconds=10.0, report=Progress(clock))


def test_the_tracker_never_reaches_100_before_the_end_and_always_moves() -> None:
    tracker = ProgressTracker()
    values = [tracker.advance(snapshot("running", 99)) for _ in range(10_000)]

    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] < 100
    assert tracker.advance(snapshot("finished")) == 100
