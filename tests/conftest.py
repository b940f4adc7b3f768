"""Shared fixtures: the APIMP simulator on loopback and a server wired to it.

The upstream is always a real HTTP server (the project's simulator on 127.0.0.1); the MCP side
is the SDK's real `Client`. Tasks last a fraction of a second and polling is fast, so no test
sleeps for long, and every wait is bounded by `anyio.fail_after`.
"""

from __future__ import annotations

import inspect
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from mcp import Client
from psycopg import sql
from starlette.types import Receive, Scope, Send

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import Simulator, running_app
from tests.support import TASK_DURATION_SECONDS, Mode, Upstream, fast_settings, missing_system_package
from tests.support.postgres import binaries, start_postgres, with_database
from tests.support.uploads import PNG


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: APIMP_TEST_POSTGRES_URL's, or one this session starts and stops.

    Without PostgreSQL's binaries the tests that need it fail under CI=true and skip elsewhere.
    """
    configured = os.environ.get("APIMP_TEST_POSTGRES_URL", "").strip()
    if configured:
        yield configured
        return
    bin_dir = binaries()
    if bin_dir is None:
        missing_system_package(
            "PostgreSQL is not installed (apt-get install postgresql), nor APIMP_TEST_POSTGRES_URL set"
        )
    server = start_postgres(bin_dir)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database of its own for one test, dropped afterwards."""
    name = f"apimp_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class CurrentSimulator:
    """An ASGI app that forwards to the current test's simulator.

    One loopback server serves the whole session (starting and stopping uvicorn for every test
    would cost more than the tests themselves); each test still gets a fresh Simulator.
    """

    def __init__(self) -> None:
        self.simulator: Simulator | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.simulator is not None, "no test is using the simulator now"
        await self.simulator.app(scope, receive, send)


@pytest.fixture(scope="session")
async def loopback_simulator() -> AsyncIterator[tuple[CurrentSimulator, str]]:
    current = CurrentSimulator()
    async with running_app(current) as base_url:
        yield current, base_url


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(task_duration_seconds=TASK_DURATION_SECONDS, seed=7)


@pytest.fixture
async def upstream(
    simulator: Simulator, loopback_simulator: tuple[CurrentSimulator, str]
) -> AsyncIterator[Upstream]:
    current, base_url = loopback_simulator
    current.simulator = simulator
    try:
        yield Upstream(simulator, base_url)
    finally:
        simulator.cancel_delays()
        current.simulator = None


@pytest.fixture
def settings(upstream: Upstream, tmp_path: Path) -> Settings:
    return fast_settings(upstream.base_url, tmp_path / "videos")


ERAS: tuple[Mode, ...] = ("auto", "legacy")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `mode` itself, or is marked `each_era`, runs in both protocol eras: the
    stateless 2026-07-28 one and the handshake most hosts speak today. The others run in one
    (their client's era is not what they check), unless they parametrize `mode` themselves."""
    takes_the_era = "mode" in inspect.signature(metafunc.function).parameters
    if (takes_the_era or metafunc.definition.get_closest_marker("each_era")) and not _sets_mode(metafunc):
        metafunc.parametrize("mode", ERAS)


def _sets_mode(metafunc: pytest.Metafunc) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if "mode" in ([name.strip() for name in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


@pytest.fixture
def mode() -> Mode:
    """The protocol era a test's client speaks (both, for a test marked `each_era`)."""
    return "auto"


@pytest.fixture
async def client(settings: Settings, mode: Mode) -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode) as connected:
        yield connected


# --- Local images for the upload tests -----------------------------------------------------------


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.png").write_bytes(PNG)
    return folder


@pytest.fixture
def upload_settings(upstream: Upstream, tmp_path: Path, allowed: Path) -> Settings:
    """Settings that allow reading images from `allowed`, up to 4096 bytes."""
    return fast_settings(
        upstream.base_url, tmp_path / "videos", upload_roots=(allowed,), upload_max_bytes=4096
    )


@pytest.fixture
def png(allowed: Path) -> Path:
    path = allowed / "first frame.png"
    path.write_bytes(PNG)
    return path
