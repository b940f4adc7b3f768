"""The simulator's progress shapes and fast failures, read over its HTTP API on a fake clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from apimp_video_mcp.simulator import PROGRESS_SHAPES, SIMULATOR_API_KEY, ProgressShape, Simulator
from apimp_video_mcp.simulator.progress import progress_at
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
DURATION_SECONDS = 100.0


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx2.AsyncClient] = []

    def connect(sim: Simulator) -> httpx2.AsyncClient:
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim.app), base_url="http://sim")
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.aclose()


async def submit(client: httpx2.AsyncClient) -> str:
    body = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a red fox"}}
    response = await client.post("/api/generate/submit", json=body, headers=AUTH)
    task_id: str = response.json()["data"]["task_id"]
    return task_id


async def status(client: httpx2.AsyncClient, task_id: str) -> tuple[str, int]:
    data = (await client.get(f"/api/generate/status/{task_id}", headers=AUTH)).json()["data"]
    return data["status"], data["progress"]


async def running_progress(client: httpx2.AsyncClient, clock: FakeClock, task_id: str) -> list[int]:
    """The progress reported every second of a task's life, while it runs."""
    seen = []
    for _ in range(int(DURATION_SECONDS)):
        state, progress = await status(client, task_id)
        if state == "running":
            seen.append(progress)
        clock.advance(1.0)
    assert await status(client, task_id) == ("finished", 100)
    return seen


@pytest.mark.parametrize("shape", PROGRESS_SHAPES)
async def test_every_shape_runs_from_low_to_high_and_never_reports_100_before_the_end(
    shape: ProgressShape, client_for: Any
) -> None:
    clock = FakeClock()
    sim = Simulator(task_duration_seconds=DURATION_SECONDS, progress_shape=shape, clock=clock)
    client = client_for(sim)
    seen = await running_progress(client, clock, await submit(client))

    assert seen == sorted(seen), "progress never goes back"
    assert all(0 <= value <= 99 for value in seen)
    if shape == "none":
        assert set(seen) == {0}
    else:
        assert seen[-1] - seen[0] >= 50


def test_the_shapes_differ_where_a_schedule_would_notice() -> None:
    halfway = {shape: progress_at(shape, 0.5) for shape in PROGRESS_SHAPES}

    assert halfway["none"] == 0
    assert halfway["linear"] == 49
    assert halfway["slow_start"] < 15 < 90 < halfway["early_fast"]
    assert halfway["stalled_then_jumping"] == progress_at("stalled_then_jumping", 0.1) == 10
    assert progress_at("stalled_then_jumping", 0.8) == 90
    jumps = [
        b - a for a, b in itertools.pairwise(progress_at("stalled_then_jumping", i / 100) for i in range(101))
    ]
    assert max(jumps) == 80


async def test_the_shape_can_be_chosen_per_task(client_for: Any) -> None:
    clock = FakeClock()
    shapes: list[ProgressShape] = ["none", "linear"]
    sim = Simulator(
        task_duration_seconds=DURATION_SECONDS, progress_shape=lambda model: shapes.pop(0), clock=clock
    )
    client = client_for(sim)
    flat, straight = await submit(client), await submit(client)
    clock.advance(DURATION_SECONDS / 2)

    assert (await status(client, flat))[1] == 0
    assert 30 < (await status(client, straight))[1] < 60


async def test_a_fast_failure_fails_seconds_after_the_submit_whatever_the_duration(client_for: Any) -> None:
    clock = FakeClock()
    sim = Simulator(task_duration_seconds=300.0, clock=clock)
    client = client_for(sim)
    sim.fail_next_tasks(1, "Blocked by the content policy.", after_seconds=3.0)
    task_id = await submit(client)

    clock.advance(2.9)
    assert (await status(client, task_id))[0] in ("not_started", "running")
    clock.advance(0.1)
    data = (await client.get(f"/api/generate/status/{task_id}", headers=AUTH)).json()["data"]
    assert data["status"] == "failed"
    assert data["error_message"] == "Blocked by the content policy."
