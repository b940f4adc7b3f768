"""Health endpoints for orchestrators and load balancers (streamable HTTP only).

GET /healthz   liveness: the process serves HTTP. Never touches the store, so a database outage
               does not get every instance restarted at once.
GET /readyz    readiness: the service runs and its task store answers a trivial statement within
               READINESS_TIMEOUT_SECONDS; otherwise 503, so the balancer sends requests elsewhere.

Both are outside /mcp and need no authorization (the SDK's custom routes), and say nothing a
stranger could use: no URL, no host, no error text from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apimp_video_mcp import defaults
from apimp_video_mcp.service import VideoService

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


def register_health(server: MCPServer[Any], service: Callable[[], VideoService]) -> None:
    """Add the two endpoints; `service` raises RuntimeError until the server has started."""

    # The SDK's custom_route decorator carries no type hints; the handlers below do.
    @server.custom_route(LIVENESS_PATH, methods=["GET", "HEAD"], include_in_schema=False)  # type: ignore[untyped-decorator]
    async def liveness(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    @server.custom_route(READINESS_PATH, methods=["GET", "HEAD"], include_in_schema=False)  # type: ignore[untyped-decorator]
    async def readiness(_: Request) -> Response:
        try:
            running = service()
        except RuntimeError:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            with anyio.fail_after(defaults.READINESS_TIMEOUT_SECONDS):
                await running.journal.check()
        except Exception:  # any failure means "not now"; the log keeps the details
            logger.warning("readiness: the task store did not answer", exc_info=True)
            return JSONResponse({"status": "unavailable", "reason": "the task store did not answer"}, 503)
        return JSONResponse({"status": "ready"})
