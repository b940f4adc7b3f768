"""Hostile HTTP servers for tests: answers that never end, or come a byte at a time.

Served with `running_app` on loopback, they test that a client bounds an answer as a whole
(httpx2's timeouts bound each read, not the answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

App = Callable[[Any, Any, Any], Awaitable[None]]


def talking(chunk: bytes, *, pause_seconds: float = 0.0) -> App:
    """A server that answers 200 with `chunk` after `chunk`, a pause apart, until the client hangs up."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async with anyio.create_task_group() as group:

            async def talk() -> None:
                while True:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await anyio.sleep(pause_seconds)

            group.start_soon(talk)
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

    return app
