"""The task store (the journal): every task's request, ids and statuses, durably.

`interface` is the contract the service depends on, `records` the shapes it returns, and each
backend lives in a module of its own (`sqlite`, the embedded default; `postgres`, a cluster's
shared journal), chosen by `selection`; `migrations` versions the schema of both, and
`submit_lock` holds what both share to make a principal's submits take turns at its limits.
"""

from apimp_video_mcp.store.interface import TaskStore
from apimp_video_mcp.store.records import (
    EntryStatus,
    FinishedGeneration,
    JournalEntry,
    PrunedTasks,
    SubmitState,
    TaskEvent,
    TaskSummary,
)
from apimp_video_mcp.store.selection import is_postgres_url, task_store_for
from apimp_video_mcp.store.sqlite import MEMORY, SqliteTaskStore

__all__ = [
    "MEMORY",
    "EntryStatus",
    "FinishedGeneration",
    "JournalEntry",
    "PrunedTasks",
    "SqliteTaskStore",
    "SubmitState",
    "TaskEvent",
    "TaskStore",
    "TaskSummary",
    "is_postgres_url",
    "task_store_for",
]
