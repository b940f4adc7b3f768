"""Concurrent status questions on one task cost about one upstream request.

Driven through the real MCP Client against the simulator on loopback, with the server's clock
fake and standing still, so "fresh" means exactly what the test says; the cost is counted as
the status requests the simulator recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client

from apimp_video_mcp import defaults
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.server import build_server
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.store import SqliteTaskStore
from apimp_video_mcp.upstream.client import ApimpClient, SharedHttpClient
from apimp_video_mcp.view.player import PlayerService
from tests.support import Upstream, fast_settings, structured
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"
CROWD = 200


def status_requests(upstream: Upstream) -> int:
    return len(upstream.simulator.requests_to("/api/generate/status"))


async def test_a_crowd_of_concurrent_get_status_calls_costs_one_request(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.task_duration_seconds = 600.0
    clock = FakeClock()
    async with Client(build_server(fast_settings(upstream.base_url, tmp_path), clock=clock)) as client:
        submitted = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "a red fox"}})
        task_id = structured(submitted)["task_id"]
        answers: list[str] = []

        async def ask() -> None:
            answers.append(structured(await client.call_tool("get_status", {"task_id": task_id}))["status"])

        async with anyio.create_task_group() as group:
            for _ in range(CROWD):
                group.start_soon(ask)

        assert len(answers) == CROWD
        assert set(answers) <= {"not_started", "running"}
        assert status_requests(upstream) == 1

        await clock.run_for(defaults.STATUS_FRESH_SECONDS + 0.1)  # the answer is stale now
        await client.call_tool("get_status", {"task_id": task_id})
        assert status_requests(upstream) == 2

        await client.call_tool("get_status", {"task_id": task_id, "refresh": True})  # no reuse: ask now
        assert status_requests(upstream) == 3


async def test_get_status_joins_the_running_poller_of_a_wait(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.task_duration_seconds = 600.0
    clock = FakeClock()
    polled = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "waiting for APIMP" not in message:
            polled.set()

    settings = fast_settings(upstream.base_url, tmp_path, progress_heartbeat_seconds=5.0)
    async with Client(build_server(settings, clock=clock)) as client, anyio.create_task_group() as group:
        submitted = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "a red fox"}})
        task_id = structured(submitted)["task_id"]

        async def wait() -> None:
            await client.call_tool(
                "wait_for_video", {"task_id": task_id, "timeout_seconds": 600}, progress_callback=on_progress
            )

        group.start_soon(wait)
        with anyio.fail_after(30):
            await polled.wait()  # the wait's poller has its first answer
        assert status_requests(upstream) == 1

        for _ in range(20):
            structured(await client.call_tool("get_status", {"task_id": task_id}))

        assert status_requests(upstream) == 1, "the poller's fresh answer served every get_status"
        group.cancel_scope.cancel()


async def test_the_players_status_calls_share_one_request(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.task_duration_seconds = 600.0
    settings = fast_settings(upstream.base_url, tmp_path)
    http = SharedHttpClient(settings.base_url, request_timeout_seconds=settings.request_timeout_seconds)
    journal = SqliteTaskStore(settings.journal_path)
    service = VideoService(
        settings, ApimpClient(http.client, settings.require_api_key), journal, clock=FakeClock()
    )
    try:
        async with service.running():
            request = SubmitRequest.model_validate({"model": VEO, "input": {"prompt": "a red fox"}})
            submitted = await service.submit(request)
            # A minute later: the journal's status is no longer fresh enough to spare the request.
            player = PlayerService(service, now=lambda: datetime.now(UTC) + timedelta(minutes=1))
            statuses = []

            async def ask() -> None:
                statuses.append((await player.status(submitted.task_id)).status)

            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(ask)
    finally:
        await http.aclose()
        await journal.close()

    assert len(statuses) == 50
    assert status_requests(upstream) == 1
