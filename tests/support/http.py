"""Serving a built server over real streamable HTTP on loopback, in this process, for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.server.auth import build_auth
from apimp_video_mcp.server.http import MCP_PATH, http_app
from apimp_video_mcp.simulator import running_app
from tests.support import Mode, fast_settings
from tests.support.processes import free_port


@asynccontextmanager
async def serving(
    server: MCPServer[Any], settings: Settings, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """The server's HTTP app (Host/Origin checks and all) on `port` (a free one unless given);
    yields the /mcp URL."""
    app = http_app(server, settings, host=host)
    async with app.router.lifespan_context(app), running_app(app, host=host, port=port) as base_url:
        yield base_url + MCP_PATH


def client_with(url: str, token: str | None, *, mode: Mode = "auto") -> Client:
    """A real SDK client over HTTP that sends `Authorization: Bearer <token>` (when given)."""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)


def initialize_request(token: str | None = None, **headers: str) -> dict[str, Any]:
    """httpx2 arguments of a raw initialize POST (what any client sends first), for what the SDK's
    client hides: status codes, headers, a Host or Origin of our choosing."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    sent = {"content-type": "application/json", "accept": "application/json, text/event-stream", **headers}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    return {"json": body, "headers": sent}


@asynccontextmanager
async def serving_oauth(
    upstream_url: str, tmp_path: Path, *, issuer: str, scopes: tuple[str, ...]
) -> AsyncIterator[tuple[str, Settings]]:
    """A server with APIMP_AUTH=oauth for `issuer`, its public URL (the tokens' audience) being the
    loopback URL it is served at; yields that URL and the settings."""
    port = free_port()
    settings = fast_settings(
        upstream_url,
        tmp_path / "videos",
        auth="oauth",
        oauth_issuer=issuer,
        public_url=f"http://127.0.0.1:{port}{MCP_PATH}",
        oauth_scopes=scopes,
    )
    server = build_server(settings, transport="streamable-http", auth=build_auth(settings, base_url=""))
    async with serving(server, settings, port=port) as url:
        yield url, settings
