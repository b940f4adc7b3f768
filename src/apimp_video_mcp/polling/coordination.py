"""Polling across instances: one poller per task among all the servers that share a store.

In one process, `PollerHub` already runs one poller per task. A cluster (several instances on
one PostgreSQL journal) needs the same across processes, and must survive any of them dying:

- **A lease per task.** Before each status request, an instance's poller claims the task's
  lease in the store, or renews it if it holds it; the claim is one atomic statement, so one
  instance wins. The owner renews all its leases in the background, and releases a lease when
  its poller stops. An owner that dies stops renewing; once its leases lapse, the next claim by
  an instance with a waiter on the task succeeds, and that instance polls from then on.
- **Everyone else follows the store.** A poller that does not hold the lease makes no upstream
  request: it reads the task's last status from the store whenever the store announces a change
  (PostgreSQL LISTEN/NOTIFY, sent by whichever instance wrote it) and, since a notification can
  be lost (a reconnect), every `reread_seconds`, when it also tries to claim the lease again; and
  it claims the moment the owner's lease would lapse, so a dead owner is replaced without delay.

`SoloCoordination` is the single process's (SQLite's) version: every poller is its own owner.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Protocol, runtime_checkable

import anyio

from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store.interface import TaskStore
from apimp_video_mcp.store.records import PollingClaim

logger = logging.getLogger(__name__)

# Called with the task id whose status changed, or None when changes may have been missed.
OnChange = Callable[[str | None], None]


@runtime_checkable
class PollingLeases(Protocol):
    """What a store shared by several instances offers to coordinate their pollers."""

    async def claim_polling(self, task_id: str, owner: str, lease_seconds: float) -> PollingClaim:
        """Take the task's lease if it is free or lapsed, or renew it if `owner` holds it; if another
        holds it, say how long its lease has left."""

    async def renew_polling(self, owner: str, lease_seconds: float) -> None:
        """Extend every lease `owner` holds."""

    async def release_polling(self, task_id: str, owner: str) -> None:
        """Give the lease up (if `owner` holds it), telling the other instances at once."""

    async def listen_for_changes(self, on_change: OnChange) -> None:
        """Call `on_change` for every status change any instance writes, until cancelled."""


class Coordination(Protocol):
    """The seam between `PollerHub` and the other instances (if any)."""

    def running(self) -> AbstractAsyncContextManager[None]:
        """The background work (renewals, listening), for as long as the block lasts."""

    async def claim(self, task_id: str) -> bool:
        """Whether this instance may ask APIMP about the task now."""

    async def release(self, task_id: str) -> None:
        """This instance's poller of the task stopped."""

    async def read(self, task_id: str) -> TaskSnapshot | None:
        """The task's last status as another instance wrote it (None: nothing known yet)."""

    async def wait_for_news(self, task_id: str) -> bool:
        """True when the task's status changed elsewhere; False after the re-read interval."""


class SoloCoordination:
    """One process: every poller owns its task, nobody else writes statuses."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    async def claim(self, task_id: str) -> bool:
        return True

    async def release(self, task_id: str) -> None:
        return None

    async def read(self, task_id: str) -> TaskSnapshot | None:
        return None

    async def wait_for_news(self, task_id: str) -> bool:
        await anyio.sleep_forever()  # never called: a solo poller always holds its claim
        return False


# A claim made this long after a lease's end finds it lapsed, whatever the database's own timing.
LAPSE_MARGIN_SECONDS: Final = 0.05


def instance_name() -> str:
    """Who holds a lease, for people reading the table: host, process, and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ClusterCoordination:
    """Leases and change notifications over a shared store (see the module docstring)."""

    def __init__(
        self,
        store: TaskStore,
        leases: PollingLeases,
        *,
        lease_seconds: float,
        reread_seconds: float,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        self.lease_seconds = lease_seconds
        self.reread_seconds = reread_seconds
        self.owner = owner or instance_name()
        self._news: dict[str, anyio.Event] = {}
        # Per task another instance holds: when its lease lapses unless renewed (anyio's clock).
        self._lapses_at: dict[str, float] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with background_tasks() as group:
            group.start_soon(self._renew_forever)
            group.start_soon(self._listen_forever)
            yield

    async def claim(self, task_id: str) -> bool:
        claim = await self._leases.claim_polling(task_id, self.owner, self.lease_seconds)
        if claim.held or claim.lapses_in_seconds is None:
            self._lapses_at.pop(task_id, None)
        else:
            self._lapses_at[task_id] = anyio.current_time() + claim.lapses_in_seconds
        return claim.held

    async def release(self, task_id: str) -> None:
        self._lapses_at.pop(task_id, None)
        await self._leases.release_polling(task_id, self.owner)

    async def read(self, task_id: str) -> TaskSnapshot | None:
        # Its follower already checked the task is its caller's; the entry is read as its owner's.
        owner = await self._store.owner(task_id)
        entry = None if owner is None else await self._store.get(task_id, principal=owner)
        if entry is None or entry.task_id is None or entry.submit_state != "accepted":
            return None
        return entry.to_snapshot()

    async def wait_for_news(self, task_id: str) -> bool:
        news = self._news.setdefault(task_id, anyio.Event())
        with anyio.move_on_after(self._until_next_claim(task_id)):
            await news.wait()
        if self._news.get(task_id) is news:
            del self._news[task_id]
        return news.is_set()

    def _until_next_claim(self, task_id: str) -> float:
        """The re-read interval, or less when the owner's lease lapses sooner (a dead owner's does)."""
        lapses_at = self._lapses_at.get(task_id)
        if lapses_at is None:
            return self.reread_seconds
        lapsed = lapses_at + LAPSE_MARGIN_SECONDS - anyio.current_time()
        return max(0.0, min(self.reread_seconds, lapsed))

    def _announce(self, task_id: str | None) -> None:
        """A change was written (by anyone): wake this instance's followers of the task."""
        if task_id is None:  # changes may have been missed: everyone re-reads
            waiting, self._news = list(self._news.values()), {}
        else:
            waiting = [event] if (event := self._news.pop(task_id, None)) is not None else []
        for event in waiting:
            event.set()

    async def _renew_forever(self) -> None:
        """Renew this instance's leases three times per lease, so one slow renewal costs none."""
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            try:
                await self._leases.renew_polling(self.owner, self.lease_seconds)
            except Exception:  # the store is away: the next claim decides who polls
                logger.warning("renewing the polling leases failed", exc_info=True)

    async def _listen_forever(self) -> None:
        """Listen for changes; after any interruption, reconnect and have everyone re-read."""
        while True:
            try:
                await self._leases.listen_for_changes(self._announce)
            except Exception:
                logger.warning("listening for task changes failed; reconnecting", exc_info=True)
            self._announce(None)
            await anyio.sleep(self.reread_seconds)
