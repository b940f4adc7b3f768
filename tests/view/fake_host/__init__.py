"""A small MCP Apps host of our own, for testing the player view in a real browser.

It does what a web host does, and no more: it serves a host page (`host.html`) that iframes the
view from ANOTHER origin (http://localhost:PORT against the page's http://127.0.0.1:PORT, as a
host's sandbox domain would be), sandboxed, under a Content-Security-Policy built from the view
resource's `_meta.ui.csp`, or under the spec's restrictive default when the test wants a host
that honours no declared origin. The page answers `ui/initialize` with a theme, pushes the tool
input and result, and forwards the view's `tools/call` and `resources/read` to `/rpc`, which
calls the REAL server through an in-process `Client` (only tools whose visibility includes "app",
as the spec requires of hosts). `ui/open-link` is recorded, not followed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from mcp import Client
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from apimp_video_mcp.simulator import running_app
from apimp_video_mcp.view.wiring import PLAYER_URI

CspMode = Literal["declared", "default"]

HOST_PAGE = Path(__file__).with_name("host.html")


def content_security_policy(csp: dict[str, Any] | None, mode: CspMode) -> str:
    """The view's CSP, built as the spec builds it (its "CSP Construction from Metadata")."""
    granted: dict[str, Any] = (csp or {}) if mode == "declared" else {}
    extra = "".join(f" {domain}" for domain in granted.get("resourceDomains") or [])
    connect = "".join(f" {domain}" for domain in granted.get("connectDomains") or [])
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'unsafe-inline'{extra}",
            f"style-src 'self' 'unsafe-inline'{extra}",
            f"connect-src 'self'{connect}",
            f"img-src 'self' data:{extra}",
            f"font-src 'self'{extra}",
            f"media-src 'self' data:{extra}",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'self'",
        ]
    )


def build_app(client: Client) -> Starlette:
    """The host page, the sandboxed view, and the bridge's proxy to the server."""
    visibility: dict[str, list[str]] = {}

    async def host_page(request: Request) -> Response:
        return FileResponse(HOST_PAGE, media_type="text/html")

    async def view(request: Request) -> Response:
        mode: CspMode = "default" if request.query_params.get("csp") == "default" else "declared"
        result = await client.read_resource(PLAYER_URI)  # read as a host reads it: once per view
        [content] = result.contents
        html = getattr(content, "text", None)
        assert isinstance(html, str)
        ui = (content.meta or {}).get("ui") or {}
        headers = {"content-security-policy": content_security_policy(ui.get("csp"), mode)}
        return HTMLResponse(html, headers=headers)

    async def rpc(request: Request) -> Response:
        message = await request.json()
        method, params, caller = message["method"], message.get("params") or {}, message.get("caller")
        try:
            if method == "tools/call":
                if caller == "app" and "app" not in await tool_visibility(params["name"]):
                    return _error(-32600, f"the view may not call {params['name']}")
                called = await client.call_tool(params["name"], params.get("arguments") or {})
                return JSONResponse(
                    {"result": called.model_dump(by_alias=True, mode="json", exclude_none=True)}
                )
            if method == "resources/read":
                read = await client.read_resource(params["uri"])
                return JSONResponse(
                    {"result": read.model_dump(by_alias=True, mode="json", exclude_none=True)}
                )
        except MCPError as exc:
            return _error(exc.error.code, exc.error.message)
        return _error(-32601, f"this host does not forward {method}")

    async def tool_visibility(name: str) -> list[str]:
        if not visibility:
            for tool in (await client.list_tools()).tools:
                ui = (tool.meta or {}).get("ui") or {}
                visibility[tool.name] = list(ui.get("visibility") or ["model", "app"])
        return visibility.get(name, [])

    return Starlette(
        routes=[
            Route("/", host_page),
            Route("/view", view),
            Route("/rpc", rpc, methods=["POST"]),
        ]
    )


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}})


@asynccontextmanager
async def running_host(client: Client) -> AsyncIterator[int]:
    """Serve the fake host on a free loopback port for the block; yield the port."""
    async with running_app(build_app(client)) as base_url:
        yield int(base_url.rsplit(":", 1)[1])
