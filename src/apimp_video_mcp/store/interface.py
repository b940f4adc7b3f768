"""The task store's contract: what the service needs from a journal, whatever holds it.

A submitted video costs money, and a task id in a chat transcript is a fragile receipt: close
the host or crash the server mid-wait and it is gone. So every submit is written down BEFORE it
is sent (even a crash during the request leaves a trace), and every status seen afterwards is
written through. The service depends on this Protocol only, so a backend (SQLite today, a
shared database for a cluster) can be added beside the others without touching the service.
No backend ever stores the API key: only the request body, which holds none.

Every entry belongs to a principal (`apimp_video_mcp.access.principals`): reads take the caller's
principal and never return another's entry, so no caller can see, wait on or replay someone
else's task. A backend must keep that column through its own upgrades.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store.records import (
    EntryStatus,
    FinishedGeneration,
    JournalEntry,
    PrunedTasks,
    TaskSummary,
)


def describe_failure(exc: Exception) -> str:
    """A journal failure in a few words for the caller: the backend's message, first line, bounded.

    An OS error gives only its reason: its file name is a path on the server, which a remote
    caller has no business learning (the operator finds it in the log).
    """
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]


class TaskStore(Protocol):
    """A durable record of every task this server submitted or saw."""

    async def close(self) -> None:
        """Release the store's connections; safe to call when it was never opened."""

    async def check(self) -> None:
        """Answer one trivial statement, or raise: whether the store can serve requests now."""

    def submit_lock(self, principal: str) -> AbstractAsyncContextManager[None]:
        """Hold the principal's submit lock for the block: across every process sharing this journal,
        no other submit of the principal is between its checks and its journal entry meanwhile.

        A principal's limits and budgets are counted from the journal, so the check of a submit
        and the `record_submission` it allows must be one step, or submits checked at once (on one
        instance or on several) would all see room for one more and all be sent. The wait is
        bounded (`defaults.SUBMIT_LOCK_TIMEOUT_SECONDS`): past it, `JournalUnavailableError` says
        nothing was sent. So is a lock that may have lapsed during the block (its connection was
        lost): the block's entry must then not be sent. See `store.submit_lock`.
        """

    async def record_submission(
        self,
        model: str,
        request: dict[str, Any],
        *,
        principal: str,
        cost: float | None = None,
        currency: str | None = None,
    ) -> str:
        """Write the request (and its estimated cost) down, as the principal's, before it is sent;
        returns the new entry's id."""

    async def record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> None:
        """APIMP created the task: attach its id and first status."""

    async def record_unknown_outcome(self, entry_id: str) -> None:
        """The submit may or may not have created a task: keep the entry as a receipt."""

    async def discard(self, entry_id: str) -> None:
        """Forget a submit that provably created nothing (refused, or never connected)."""

    async def record_status(self, snapshot: TaskSnapshot, *, principal: str) -> None:
        """Write a status through; a task first seen here (submitted elsewhere) gets an entry, the
        principal's. An existing entry keeps its owner."""

    async def record_local_paths(self, task_id: str, paths: Sequence[str]) -> None:
        """Remember where a task's videos were saved."""

    async def get(self, task_id: str, *, principal: str, with_events: bool = False) -> JournalEntry | None:
        """The principal's entry for a task id (or an entry id, for a submit whose outcome is
        unknown); None when there is none, whether or not another principal has one."""

    async def owner(self, task_id: str) -> str | None:
        """The principal a task id (or entry id) belongs to; None when the journal has no such task."""

    async def recent(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[JournalEntry]:
        """The principal's entries, newest first, optionally only one status."""

    async def submissions_since(self, *, principal: str, since: str) -> list[JournalEntry]:
        """The principal's own submits (entries with a request) recorded at or after `since` (an
        ISO 8601 UTC time, as `recorded_at` is written), oldest first: what its limits count."""

    async def spent_since(self, since: datetime, currency: str, *, principal: str) -> float:
        """The summed estimates (in `currency`) of the principal's submits recorded at or after `since`."""

    async def finished_generations(self, model: str, *, limit: int) -> list[FinishedGeneration]:
        """The model's most recent finished tasks of every principal, newest first, as the poll
        schedule learns typical durations from them (`durations`): APIMP's created and finished
        times, and the request without its prompt and images. Durations reveal nothing of a task."""

    async def prune(self, *, updated_before: datetime) -> PrunedTasks:
        """Forget finished and failed tasks unchanged since `updated_before`, with their events, whoever
        they belong to. Tasks still running and submits whose outcome is unknown (receipts) are kept.
        """

    async def summaries(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[TaskSummary]:
        """Like `recent`, without the requests: each prompt cut to a preview (the listing's shape)."""
