"""Health endpoints over real HTTP (liveness always, readiness only while the task store answers),
and the request-state keys the instances of a cluster share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import psycopg
import pytest
from psycopg import sql

from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server import build_server
from apimp_video_mcp.server.app import request_state_security
from apimp_video_mcp.simulator import running_app
from tests.support import Upstream, fast_settings

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(settings: Settings, *, started: bool = True) -> AsyncIterator[httpx2.AsyncClient]:
    """The streamable HTTP app on loopback; its lifespan (the service) runs only if `started`."""
    app = build_server(settings).streamable_http_app()
    async with running_app(app) as base_url, httpx2.AsyncClient(base_url=base_url) as http:
        if not started:
            yield http
            return
        async with app.router.lifespan_context(app):
            yield http


async def test_liveness_and_readiness_on_a_working_server(upstream: Upstream, tmp_path: Path) -> None:
    async with serving(fast_settings(upstream.base_url, tmp_path / "videos")) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")

    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_a_server_still_starting_is_alive_but_not_ready(upstream: Upstream, tmp_path: Path) -> None:
    async with serving(fast_settings(upstream.base_url, tmp_path / "videos"), started=False) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")

    assert alive.status_code == 200
    assert (ready.status_code, ready.json()) == (503, {"status": "starting"})


async def test_readiness_follows_the_postgresql_store(
    upstream: Upstream, tmp_path: Path, postgres_url: str, postgres_server: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", journal_path=postgres_url)
    async with serving(settings) as http:
        ready = await http.get("/readyz")
        # The database goes away under the running server.
        name = postgres_url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            gone = await http.get("/readyz")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))  # for the teardown
        alive = await http.get("/healthz")

    assert ready.status_code == 200
    assert gone.status_code == 503
    assert gone.json() == {"status": "unavailable", "reason": "the task store did not answer"}
    assert alive.status_code == 200


async def test_an_unreachable_database_is_not_ready_and_not_named(upstream: Upstream, tmp_path: Path) -> None:
    url = "postgresql://apimp:hunter2@127.0.0.1:1/journal"
    async with serving(fast_settings(upstream.base_url, tmp_path / "videos", journal_path=url)) as http:
        ready = await http.get("/readyz")

    assert ready.status_code == 503
    assert "hunter2" not in ready.text
    assert "127.0.0.1" not in ready.text


def test_instances_sharing_request_state_keys_open_each_others_state(tmp_path: Path) -> None:
    """A client's retry carrying a sealed question may land on any instance of a cluster."""
    keys = "k" * 32 + "," + "o" * 32
    first = request_state_security(fast_settings("http://127.0.0.1:1", tmp_path, request_state_keys=keys))
    second = request_state_security(fast_settings("http://127.0.0.1:1", tmp_path, request_state_keys=keys))
    alone = request_state_security(fast_settings("http://127.0.0.1:1", tmp_path))

    assert first is not None
    assert second is not None
    assert second.codec.unseal(first.codec.seal(b"the price question")) == b"the price question"
    assert alone is None  # the SDK's own key, one per process


def test_short_request_state_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"APIMP_REQUEST_STATE_KEYS: .*at least 32 characters"):
        Settings.from_env({"APIMP_REQUEST_STATE_KEYS": "short"})
