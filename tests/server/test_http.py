"""Streamable HTTP on any address: Host and Origin validated, open non-loopback binds refused."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from starlette.requests import ClientDisconnect

from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server import build_server
from apimp_video_mcp.server.http import HangUpFilter, check_bind, is_loopback, transport_security
from tests.support import Upstream, fast_settings
from tests.support.http import initialize_request, serving
from tests.support.processes import child_environment, console_script

pytestmark = pytest.mark.anyio


async def post(url: str, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(url, **initialize_request(None, **headers))


@pytest.fixture
async def served_on_127_0_0_2(upstream: Upstream, tmp_path: Path) -> AsyncIterator[tuple[str, Settings]]:
    """A non-default loopback address: the SDK's own checks would be off here."""
    settings = fast_settings(
        upstream.base_url,
        tmp_path / "videos",
        allowed_hosts=("video.example.com",),
        allowed_origins=("https://app.example.com",),
    )
    async with serving(
        build_server(settings, transport="streamable-http"), settings, host="127.0.0.2"
    ) as url:
        yield url, settings


async def test_a_foreign_host_or_origin_is_refused_on_any_bind_address(
    served_on_127_0_0_2: tuple[str, Settings],
) -> None:
    url, _ = served_on_127_0_0_2
    port = httpx2.URL(url).port

    rebinding = await post(url, host="attacker.example", origin="http://attacker.example")
    rebinding_with_port = await post(url, host=f"attacker.example:{port}")
    foreign_origin = await post(url, origin="http://attacker.example")

    assert rebinding.status_code == 421
    assert rebinding_with_port.status_code == 421
    assert foreign_origin.status_code == 403
    # Its own address (an IP literal cannot be rebound) and loopback's names are accepted.
    assert (await post(url)).status_code == 200
    assert (await post(url, host=f"localhost:{port}", origin=f"http://localhost:{port}")).status_code == 200


async def test_configured_hosts_and_origins_are_accepted(served_on_127_0_0_2: tuple[str, Settings]) -> None:
    url, _ = served_on_127_0_0_2

    named = await post(url, host="video.example.com")
    named_with_port = await post(url, host="video.example.com:8443", origin="https://app.example.com")

    assert named.status_code == 200
    assert named_with_port.status_code == 200


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)],
)
def test_loopback_is_recognised(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_an_open_non_loopback_bind_is_refused_with_how_to_configure_auth(tmp_path: Path) -> None:
    settings = Settings(download_dir=tmp_path)

    with pytest.raises(ConfigurationError) as refused:
        check_bind("0.0.0.0", settings, allow_unauthenticated=False)

    assert "APIMP_AUTH=keys" in str(refused.value)
    assert "--allow-unauthenticated" in str(refused.value)
    check_bind("0.0.0.0", settings, allow_unauthenticated=True)
    check_bind("0.0.0.0", settings.model_copy(update={"auth": "byok"}), allow_unauthenticated=False)
    check_bind("127.0.0.1", settings, allow_unauthenticated=False)


async def test_the_console_script_refuses_at_start_and_says_why(tmp_path: Path) -> None:
    environment: dict[str, Any] = child_environment(APIMP_JOURNAL=str(tmp_path / "journal.sqlite3"))
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [console_script(), "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "1"],
            env=environment,
            check=False,
            stdout=subprocess.DEVNULL,
        )

    assert result.returncode == 2
    assert b"Refusing to serve streamable HTTP on 0.0.0.0 without authentication" in result.stderr


def test_a_wildcard_bind_accepts_only_loopback_and_configured_names(tmp_path: Path) -> None:
    settings = Settings(download_dir=tmp_path, allowed_hosts=("video.example.com:443",))

    security = transport_security(settings, host="0.0.0.0")

    assert "0.0.0.0" not in str(security.allowed_hosts)
    assert "video.example.com:443" in security.allowed_hosts
    assert "video.example.com" not in security.allowed_hosts, "a port given is the only port accepted"
    assert security.enable_dns_rebinding_protection


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_a_client_hanging_up_mid_request_is_no_error_in_the_log(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    """Balancer timeouts and instance restarts cut requests off; each must not log a traceback."""
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    async with serving(build_server(settings, transport="streamable-http"), settings) as url:
        port = httpx2.URL(url).port
        assert port is not None
        stream = await anyio.connect_tcp("127.0.0.1", port)
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {version}\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        await stream.send(head.encode() + b'{"jsonrpc": "2.0", ')  # ...and the rest never comes
        await stream.aclose()
        # Each answer below takes the server's event loop round more than once: the hang-up has
        # been handled (and logged, if it were) before the last one.
        answers = [(await post(url)).status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_other_errors_still_reach_the_log() -> None:
    def record_of(exc: BaseException) -> logging.LogRecord:
        exc_info = (type(exc), exc, None)
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "x", None, exc_info)

    assert HangUpFilter().filter(record_of(RuntimeError("a real failure")))
    assert not HangUpFilter().filter(record_of(ClientDisconnect()))
