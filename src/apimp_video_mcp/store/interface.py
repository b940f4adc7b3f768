"""The task store's contract: what the service needs from a journal, whatever holds it.

A submitted video costs money, and a task id in a chat transcript is a fragile receipt: close
the host or crash the server mid-wait and it is gone. So every submit is written down BEFORE it
is sent (even a crash during the request leaves a trace), and every status seen afterwards is
written through. The service depends on this Protocol only, so a backend (SQLite today, a
shared database for a cluster) can be added beside the others without touching the service.
No backend ever stores the API key: only the request body, which holds none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store.records import EntryStatus, JournalEntry


class TaskStore(Protocol):
    """A durable record of every task this server submitted or saw."""

    async def close(self) -> None:
        """Release the store's connections; safe to call when it was never opened."""

    async def record_submission(self, model: str, request: dict[str, Any]) -> str:
        """Write the request down before it is sent; returns the new entry's id."""

    async def record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> None:
        """APIMP created the task: attach its id and first status."""

    async def record_unknown_outcome(self, entry_id: str) -> None:
        """The submit may or may not have created a task: keep the entry as a receipt."""

    async def discard(self, entry_id: str) -> None:
        """Forget a submit that provably created nothing (refused, or never connected)."""

    async def record_status(self, snapshot: TaskSnapshot) -> None:
        """Write a status through; a task first seen here (submitted elsewhere) gets an entry."""

    async def record_local_paths(self, task_id: str, paths: Sequence[str]) -> None:
        """Remember where a task's videos were saved."""

    async def get(self, task_id: str, *, with_events: bool = False) -> JournalEntry | None:
        """The entry for a task id (or an entry id, for a submit whose outcome is unknown)."""

    async def recent(self, *, status: EntryStatus | None = None, limit: int = 20) -> list[JournalEntry]:
        """Newest first, optionally only one status."""
