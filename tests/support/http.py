"""Serving a built server over real streamable HTTP on loopback, in this process, for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server.http import MCP_PATH, http_app
from apimp_video_mcp.simulator import running_app
from tests.support import Mode


@asynccontextmanager
async def serving(
    server: MCPServer[Any], settings: Settings, *, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """The server's HTTP app (Host/Origin checks and all) on a free port; yields the /mcp URL."""
    app = http_app(server, settings, host=host)
    async with app.router.lifespan_context(app), running_app(app, host=host) as base_url:
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
