"""Looking a task up for a principal: its journal entry, and its status at APIMP.

Both the wait and `get_status` start here, and so does every request the pollers send, so the
rules of who may see what live in one place: a principal sees only its own tasks, and the answer
never tells whether someone else's exists (`entry_for`). What APIMP says is written through to
the journal, and this process remembers the tasks it has seen running and whose each is: that
spares the journal a write when nothing changed and a read to ask whether a task has ended,
and tells the pollers whose key to ask APIMP with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.errors import JournalUnavailableError, SubmitOutcomeUnknownError, UnknownTaskError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store import JournalEntry, TaskStore
from apimp_video_mcp.store.interface import describe_failure
from apimp_video_mcp.upstream.client import ApimpClient

logger = logging.getLogger(__name__)


class TaskLookups:
    """A principal's tasks, looked up in the journal and at APIMP (with the principal's own client,
    from `client_for`)."""

    def __init__(self, journal: TaskStore, client_for: Callable[[Principal], ApimpClient]) -> None:
        self.journal = journal
        self._client_for = client_for
        # The last status written to the journal of each task this process has seen running: it
        # spares the journal a write when nothing changed, and a read to ask if the task ended.
        self._recorded_running: dict[str, TaskSnapshot] = {}
        # Whose each polled (or running) task is: the poller asks APIMP with its owner's key.
        self._owners: dict[str, Principal] = {}

    def seen_running_by(self, task_id: str, principal: Principal) -> bool:
        """Whether this process has seen the task running as the principal's: then it cannot have
        ended unseen, and the journal need not be asked."""
        owner = self._owners.get(task_id)
        return task_id in self._recorded_running and owner is not None and owner.id == principal.id

    def follow_as(self, task_id: str, principal: Principal) -> None:
        """Poll the task as the principal's (with its key): set before a wait follows it."""
        self._owners[task_id] = principal

    async def entry_for(
        self, task_id: str, principal: Principal, *, with_events: bool = False
    ) -> JournalEntry | None:
        """The principal's journal entry for a task, or None for a task it may still ask APIMP about.

        Only the local principal asks APIMP about a task id the journal has never seen (a task
        submitted elsewhere with the same key). Anyone else's task, and for a remote principal any
        task not already its own, is refused with the same `UnknownTaskError`: the answer never
        tells whether a task exists.
        """
        with reading_the_journal(f"look up task {task_id}"):
            entry = await self.journal.get(task_id, principal=principal.id, with_events=with_events)
            refused = entry is None and (principal.remote or await self.journal.owner(task_id) is not None)
        if refused:
            raise UnknownTaskError(task_id)
        return entry

    async def entry_with_a_task(self, task_id: str, principal: Principal) -> JournalEntry | None:
        """`entry_for`, refusing a submit whose outcome is unknown: it has no task to ask about."""
        entry = await self.entry_for(task_id, principal)
        if entry is not None and entry.submit_state == "unknown":
            raise SubmitOutcomeUnknownError(_unknown_outcome_message(entry))
        return entry

    async def fetch_status(
        self, task_id: str, principal: Principal = LOCAL_PRINCIPAL, *, retry: bool = True
    ) -> TaskSnapshot:
        """Ask APIMP (with the principal's key), and write what it says through to the journal (when
        it says something new). The caller has checked the task is the principal's (`entry_for`)."""
        snapshot = await self._client_for(principal).get_status(task_id, retry=retry)
        if self._recorded_running.get(task_id) != snapshot:
            try:
                await self.journal.record_status(snapshot, principal=principal.id)
            except Exception as exc:  # the status is still true: report it, write it next time
                logger.warning(
                    "the task journal could not record a status of %s: %s", task_id, describe_failure(exc)
                )
                self._recorded_running.pop(task_id, None)
                return snapshot
        if snapshot.is_terminal:
            self._recorded_running.pop(task_id, None)
            self._owners.pop(task_id, None)
        else:
            self._recorded_running[task_id] = snapshot
            self._owners[task_id] = principal
        return snapshot

    async def poll_status(self, task_id: str) -> TaskSnapshot:
        """The pollers' fetch, one attempt (their own schedule decides when to try again), as the
        task's owner (set by `follow_as` before a wait follows it)."""
        return await self.fetch_status(task_id, self._owners[task_id], retry=False)


@contextmanager
def reading_the_journal(purpose: str) -> Iterator[None]:
    """A journal that cannot answer (the disk, the database or its pool) is told plainly, for what,
    and that nothing was sent: the SDK would otherwise report an unexpected error and no more."""
    try:
        yield
    except Exception as exc:
        failure = describe_failure(exc)
        logger.warning("the task journal could not be read to %s: %s", purpose, failure)
        raise JournalUnavailableError(
            f"The task journal could not be read to {purpose} ({failure}). Nothing was sent to APIMP. "
            "Try again in a moment; if it keeps failing, the server's operator should check APIMP_JOURNAL."
        ) from exc


def _unknown_outcome_message(entry: JournalEntry) -> str:
    """Why a submit whose outcome is unknown has no status to show, and what to check before
    sending the same request again (it may have been created, and paid for)."""
    return (
        f"The submit recorded as {entry.entry_id} ({entry.model}, at {entry.recorded_at}) got no clear "
        "answer from APIMP, so whether the task exists is unknown and it has no task id. It was not "
        "resubmitted. Check your APIMP dashboard before submitting the same request again."
    )
