"""Serving an ASGI app on loopback for a block of code: the simulator, test apps, the fake host.

One helper serves every local HTTP thing the project starts (the simulator in the CLI's
`--simulate` mode, the simulator and forwarding apps in tests, the fake MCP Apps host), so each
gets the same port-0 binding, graceful shutdown and clean logging.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp

from apimp_video_mcp.simulator.app import SIMULATOR_API_KEY, Simulator

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn.Server that announces "accepting connections" with an event, not a flag to poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@asynccontextmanager
async def running_simulator(sim: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `sim.app` on loopback for the duration of the block; yield its base URL."""
    async with running_app(sim.app, host=host, port=port, before_stop=sim.cancel_delays) as base_url:
        yield base_url


@asynccontextmanager
async def running_app(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, before_stop: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    """Serve any ASGI app with uvicorn for the duration of the block; yield its base URL.

    We bind the socket ourselves so port 0 yields a known free port before uvicorn starts.
    uvicorn runs shielded and is stopped through `should_exit`, so even a cancelled caller
    gets a graceful shutdown and no leaked sockets. `log_config=None` leaves the host
    application's logging (and stdout, which stdio MCP needs clean) untouched. An error in
    the caller's block is re-raised as is, not wrapped in an ExceptionGroup by the task group.
    """
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    # asyncio turns Nagle off only for sockets whose proto is IPPROTO_TCP, and create_server leaves
    # it 0: without this, every keep-alive answer waits ~40 ms for the client's delayed ACK.
    # Accepted connections inherit the option from the listening socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    base_url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    options: dict[str, Any] = {"log_config": None, "log_level": "warning", "access_log": False}
    server = _Server(uvicorn.Config(app, lifespan="off", timeout_graceful_shutdown=1, **options))
    failure: Exception | None = None

    async def serve() -> None:
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await server.ready.wait()
            if not server.started:
                raise RuntimeError(f"could not serve on {base_url}")
            try:
                yield base_url
            except Exception as exc:  # re-raised below, outside the task group
                failure = exc
            finally:
                if before_stop is not None:
                    before_stop()
                server.should_exit = True
    finally:
        sock.close()
    if failure is not None:
        raise failure


async def serve_simulator(sim: Simulator, *, host: str, port: int) -> None:
    """Serve until cancelled (the CLI's `simulate` command)."""
    async with running_simulator(sim, host=host, port=port) as base_url:
        logger.info("APIMP simulator listening on %s (API key: %s)", base_url, SIMULATOR_API_KEY)
        await anyio.sleep_forever()
