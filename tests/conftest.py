"""Shared fixtures: the APIMP simulator on loopback and a server wired to it.

The upstream is always a real HTTP server (the project's simulator on 127.0.0.1); the MCP side
is the SDK's real `Client`. Tasks last a fraction of a second and polling is fast, so no test
sleeps for long, and every wait is bounded by `anyio.fail_after`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import Simulator, running_simulator
from tests.support import TASK_DURATION_SECONDS, Mode, Upstream, fast_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(task_duration_seconds=TASK_DURATION_SECONDS, seed=7)


@pytest.fixture
async def upstream(simulator: Simulator) -> AsyncIterator[Upstream]:
    async with running_simulator(simulator) as base_url:
        yield Upstream(simulator, base_url)


@pytest.fixture
def settings(upstream: Upstream, tmp_path: Path) -> Settings:
    return fast_settings(upstream.base_url, tmp_path / "videos")


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Both protocol eras: the stateless 2026-07-28 one and the handshake most hosts speak today."""
    value: Mode = request.param
    return value


@pytest.fixture
async def client(settings: Settings, mode: Mode) -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode) as connected:
        yield connected
