"""A wait ends by its deadline whatever APIMP does, through the real MCP Client, on a fake clock.

The upstream is the simulator on loopback (or nothing at all: a port nobody listens on); only
the server's clock is fake, so a deadline of tens of seconds passes when the test says so. The
test waits for what the server shows (a request reaching the simulator, a progress message)
before moving the clock, so the order of events is the same on any machine.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from mcp import Client
from mcp.types import CallToolResult
from starlette.types import Receive, Scope, Send

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import Simulator, running_app
from tests.support import fast_settings, structured, text_of
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"
DEADLINE_SECONDS = 30.0
# Real seconds to wait for something the server does at once (an answer over loopback).
PROMPTLY = 30.0


def deadline_settings(base_url: str, tmp_path: Path) -> Settings:
    """Production-like timings: they pass on the fake clock, so the numbers are the real ones."""
    return fast_settings(
        base_url,
        tmp_path / "videos",
        poll_min_interval_seconds=1.0,
        poll_max_interval_seconds=30.0,
        progress_interval_seconds=5.0,
    )


def dead_base_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class StatusRequests:
    """An ASGI wrapper that lets a test await the Nth status request reaching the simulator."""

    simulator: Simulator
    count: int = 0
    _arrived: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/generate/status"):
            self.count += 1
            self._arrived.set()
            self._arrived = anyio.Event()
        await self.simulator.app(scope, receive, send)

    async def reach(self, count: int) -> None:
        with anyio.fail_after(PROMPTLY):
            while self.count < count:
                await self._arrived.wait()


@dataclass
class ProgressLog:
    """Progress notifications as the client receives them; a test can await one that matches."""

    clock: FakeClock
    seen: list[tuple[float, float, str]] = field(default_factory=list)
    _arrived: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((self.clock.now(), progress, message or ""))
        self._arrived.set()
        self._arrived = anyio.Event()

    async def saying(self, text: str) -> None:
        with anyio.fail_after(PROMPTLY):
            while not any(text in message for _, _, message in self.seen):
                await self._arrived.wait()


@dataclass
class Wait:
    """One wait_for_video call running in the background, and its result once it returns."""

    result: CallToolResult | None = None
    returned_at: float | None = None
    _done: anyio.Event = field(default_factory=anyio.Event)

    async def returned(self) -> CallToolResult:
        with anyio.fail_after(PROMPTLY):
            await self._done.wait()
        assert self.result is not None
        return self.result


@asynccontextmanager
async def waiting(
    client: Client, clock: FakeClock, task_id: str, progress: ProgressLog
) -> AsyncIterator[Wait]:
    wait = Wait()
    async with anyio.create_task_group() as group:

        async def call() -> None:
            wait.result = await client.call_tool(
                "wait_for_video",
                {"task_id": task_id, "timeout_seconds": DEADLINE_SECONDS},
                progress_callback=progress,
            )
            wait.returned_at = clock.now()
            wait._done.set()

        group.start_soon(call)
        yield wait
        group.cancel_scope.cancel()


async def submit_through(base_url: str, tmp_path: Path) -> str:
    """Submit with a server of its own (real time), as an earlier run of the server would have."""
    async with Client(build_server(deadline_settings(base_url, tmp_path))) as client:
        result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "a red fox"}})
    task_id = structured(result)["task_id"]
    assert isinstance(task_id, str)
    return task_id


def assert_answered_by_the_deadline_with_the_journal(wait: Wait, *, last_error: str | None) -> dict[str, Any]:
    assert wait.result is not None
    data = structured(wait.result)
    assert wait.returned_at == DEADLINE_SECONDS
    assert data["timed_out"] is True
    assert data["status"] in ("not_started", "running")
    assert data["upstream_unreachable_since"] is not None
    text = text_of(wait.result)
    assert "APIMP has been unreachable since" in text
    assert "again is safe" in text
    if last_error is not None:
        assert last_error in (data["last_error"] or "")
        assert last_error in text
    return data


async def test_upstream_down_from_the_start_answers_by_the_deadline_from_the_journal(
    tmp_path: Path,
) -> None:
    simulator = Simulator(task_duration_seconds=600.0, seed=7)
    async with running_app(simulator.app) as live:
        task_id = await submit_through(live, tmp_path)
    # The server restarts (same journal) while APIMP is down: the wait resumes from the journal.
    clock = FakeClock()
    progress = ProgressLog(clock)
    server = build_server(deadline_settings(dead_base_url(), tmp_path), clock=clock)
    async with Client(server) as client, waiting(client, clock, task_id, progress) as wait:
        await progress.saying("APIMP unreachable")  # the first poll failed at once
        await clock.run_for(DEADLINE_SECONDS)
        await wait.returned()

        data = assert_answered_by_the_deadline_with_the_journal(wait, last_error="Could not reach APIMP")
        assert data["source"] == "journal"
        assert data["task_id"] == task_id
        times = [at for at, _, _ in progress.seen]
        assert times[0] == 0.0
        assert all(later - earlier <= 5.0 for earlier, later in itertools.pairwise(times))
        assert times[-1] == DEADLINE_SECONDS


async def test_a_task_nobody_has_seen_gets_a_tool_error_saying_apimp_is_unreachable(tmp_path: Path) -> None:
    clock = FakeClock()
    progress = ProgressLog(clock)
    server = build_server(deadline_settings(dead_base_url(), tmp_path), clock=clock)
    async with Client(server) as client, waiting(client, clock, "task_unknown", progress) as wait:
        await progress.saying("APIMP unreachable")
        await clock.run_for(DEADLINE_SECONDS)
        result = await wait.returned()

    assert result.is_error
    text = text_of(result)
    assert "APIMP is unreachable" in text
    assert "Could not reach APIMP" in text
    assert "again later is safe" in text
    assert wait.returned_at == DEADLINE_SECONDS


async def test_upstream_down_mid_wait_answers_by_the_deadline_with_the_last_status(tmp_path: Path) -> None:
    simulator = Simulator(task_duration_seconds=600.0, seed=7)
    requests = StatusRequests(simulator)
    clock = FakeClock()
    progress = ProgressLog(clock)
    stop, stopped = anyio.Event(), anyio.Event()

    async def serve(*, task_status: anyio.abc.TaskStatus[str]) -> None:
        async with running_app(requests) as base_url:
            task_status.started(base_url)
            await stop.wait()
        stopped.set()

    async with anyio.create_task_group() as upstream:
        base_url = await upstream.start(serve)
        task_id = await submit_through(base_url, tmp_path)
        server = build_server(deadline_settings(base_url, tmp_path), clock=clock)
        async with Client(server) as client, waiting(client, clock, task_id, progress) as wait:
            await progress.saying("waited 0s")  # the first status arrived
            stop.set()  # APIMP goes away
            with anyio.fail_after(PROMPTLY):
                await stopped.wait()
            await clock.run_for(20.0)  # the schedule's next poll is refused
            await progress.saying("APIMP unreachable")
            await clock.run_for(DEADLINE_SECONDS - 20.0)
            await wait.returned()

            data = assert_answered_by_the_deadline_with_the_journal(wait, last_error="Could not reach APIMP")
            assert data["source"] == "apimp"  # the poller's own last answer, seen at the start
            assert requests.count >= 1


async def test_a_429_storm_longer_than_the_deadline_answers_by_the_deadline(
    tmp_path: Path,
) -> None:
    simulator = Simulator(task_duration_seconds=600.0, seed=7)
    requests = StatusRequests(simulator)
    clock = FakeClock()
    progress = ProgressLog(clock)
    async with running_app(requests) as base_url:
        task_id = await submit_through(base_url, tmp_path)
        simulator.inject_fault(path_prefix="/api/generate/status", status=429, retry_after="120", times=1000)
        server = build_server(deadline_settings(base_url, tmp_path), clock=clock)
        async with Client(server) as client, waiting(client, clock, task_id, progress) as wait:
            await progress.saying("APIMP unreachable")
            await clock.run_for(DEADLINE_SECONDS)
            await wait.returned()

            assert_answered_by_the_deadline_with_the_journal(wait, last_error="rate limiting")
            assert requests.count == 1, "Retry-After (120 s) is honoured: no request before it passes"


async def test_a_status_request_that_hangs_past_the_deadline_does_not_hold_the_wait(tmp_path: Path) -> None:
    simulator = Simulator(task_duration_seconds=600.0, seed=7)
    requests = StatusRequests(simulator)
    clock = FakeClock()
    progress = ProgressLog(clock)
    async with running_app(requests, before_stop=simulator.cancel_delays) as base_url:
        task_id = await submit_through(base_url, tmp_path)
        # Answered only after an hour of real time: the status request never comes back in the test.
        simulator.inject_fault(path_prefix="/api/generate/status", status=200, delay_seconds=3600.0)
        server = build_server(deadline_settings(base_url, tmp_path), clock=clock)
        async with Client(server) as client, waiting(client, clock, task_id, progress) as wait:
            await requests.reach(1)
            await clock.run_for(5.0)
            await progress.saying("waiting for APIMP's first answer")  # heartbeats before any status
            await clock.run_for(DEADLINE_SECONDS - 5.0)
            await wait.returned()

            data = assert_answered_by_the_deadline_with_the_journal(wait, last_error=None)
            assert data["source"] == "journal"
            assert data["last_error"] is None
            assert requests.count == 1
