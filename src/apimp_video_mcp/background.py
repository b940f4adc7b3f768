"""Background work that lives exactly as long as a block: pollers, save jobs, retries, leases.

Each long-lived part of the service runs its work in a task group that must end with the
server, not be waited for: a poller or a lease renewal never finishes by itself. The rule
"cancel it when the block ends" is written here once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup


@asynccontextmanager
async def background_tasks() -> AsyncIterator[TaskGroup]:
    """A task group whose tasks are cancelled, not awaited, when the block ends (however it ends)."""
    async with anyio.create_task_group() as group:
        try:
            yield group
        finally:
            group.cancel_scope.cancel()
