"""The wait loop on a fake clock: deterministic, no real time passes."""

from __future__ import annotations

import itertools

import pytest

from apimp_video_mcp.errors import TaskNotFoundError, UpstreamServerError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling import GrowingInterval, ProgressTracker, WaitOutcome, wait_for_task

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def snapshot(status: str, progress: int | None = None) -> TaskSnapshot:
    return TaskSnapshot.from_wire({"task_id": "task_1", "status": status, "progress": progress})


class Script:
    """Answers status queries from a list, one per call, repeating the last."""

    def __init__(self, *answers: TaskSnapshot | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> TaskSnapshot:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


class Recorder:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.events: list[tuple[float, float, str]] = []

    async def __call__(self, progress: float, message: str) -> None:
        self.events.append((self.clock(), progress, message))


async def run(
    script: Script, wait_seconds: float = 60.0, heartbeat: float = 5.0
) -> tuple[Recorder, WaitOutcome]:
    clock = FakeClock()
    recorder = Recorder(clock)
    outcome = await wait_for_task(
        script,
        timeout_seconds=wait_seconds,
        schedule=GrowingInterval(initial_seconds=1.0, max_seconds=8.0, growth_factor=2.0),
        report=recorder,
        heartbeat_seconds=heartbeat,
        clock=clock,
        sleep=clock.sleep,
    )
    return recorder, outcome


async def test_it_returns_as_soon_as_the_task_finishes() -> None:
    script = Script(
        snapshot("not_started"), snapshot("running", 30), snapshot("running", 70), snapshot("finished")
    )

    recorder, outcome = await run(script)

    assert script.calls == 4
    assert outcome.snapshot.status == "finished"
    assert outcome.timed_out is False
    assert outcome.waited_seconds == pytest.approx(1 + 2 + 4)
    assert recorder.events[-1][1] == 100


async def test_progress_strictly_increases_and_beats_at_least_every_heartbeat_while_stalled() -> None:
    script = Script(snapshot("running", 40))  # progress never moves

    recorder, outcome = await run(script, wait_seconds=120.0, heartbeat=5.0)

    times = [time for time, _, _ in recorder.events]
    values = [value for _, value, _ in recorder.events]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert all(value < 100 for value in values)
    assert all(b - a <= 5.0 + 1e-9 for a, b in itertools.pairwise(times))
    assert outcome.timed_out is True


async def test_the_deadline_ends_the_wait_with_one_last_fresh_status() -> None:
    script = Script(snapshot("running", 10), snapshot("running", 20), snapshot("running", 30))

    _, outcome = await run(script, wait_seconds=10.0)

    assert outcome.timed_out is True
    assert outcome.waited_seconds == pytest.approx(10.0)
    assert outcome.snapshot.progress == 30


async def test_transient_failures_during_a_wait_are_ridden_out() -> None:
    script = Script(snapshot("running", 10), UpstreamServerError(502, "bad gateway"), snapshot("finished"))

    _, outcome = await run(script)

    assert outcome.snapshot.status == "finished"
    assert outcome.last_error is None


async def test_an_unknown_task_fails_the_wait_at_once() -> None:
    script = Script(TaskNotFoundError("task_1", "task not found"))

    with pytest.raises(TaskNotFoundError):
        await run(script)


def test_the_tracker_never_reaches_100_before_the_end_and_always_moves() -> None:
    tracker = ProgressTracker()
    values = [tracker.advance(snapshot("running", 99)) for _ in range(10_000)]

    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] < 100
    assert tracker.advance(snapshot("finished")) == 100


def test_growing_interval_is_capped() -> None:
    schedule = GrowingInterval(initial_seconds=1.0, max_seconds=5.0, growth_factor=1.5)

    intervals = [schedule.next_interval_seconds(snapshot("running"), polls) for polls in range(1, 10)]

    assert intervals[0] == 1.0
    assert max(intervals) == 5.0
    assert intervals == sorted(intervals)
