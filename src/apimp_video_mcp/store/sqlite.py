"""The SQLite task store: the embedded default, one file beside the user's data.

The journal is SQLite in WAL mode; each call runs on a worker thread, one at a
time, so the event loop never blocks on the disk. It never stores the API key: only the request
body, which holds none.

Each task row names its principal (migration 3 gave journals from before principals the column,
every old task going to the local principal, whose tasks they were).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from apimp_video_mcp import defaults
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store.migrations import migrate_sqlite
from apimp_video_mcp.store.records import (
    EntryStatus,
    FinishedGeneration,
    JournalEntry,
    PrunedTasks,
    TaskEvent,
    TaskSummary,
    journal_time,
    new_entry_id,
    stored_entry,
    stored_summary,
)
from apimp_video_mcp.store.submit_lock import TurnTimeoutError, file_locked, held_until, no_turn_within

T = TypeVar("T")

MEMORY: Final = ":memory:"
# How long a server waits before asking again to switch a new journal to WAL (see `_switch_to_wal`).
_WAL_SWITCH_PAUSE_SECONDS: Final = 0.01


def _now() -> str:
    return journal_time(datetime.now(UTC))


class SqliteTaskStore:
    """The journal over one SQLite file (or memory), opened by its first statement.

    Opening on first use keeps the file out of the server's start-up (a host waits for the tool
    list, which needs no journal); `await TaskJournal.open(path)` opens it at once instead.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_seconds: float = defaults.JOURNAL_BUSY_TIMEOUT_SECONDS,
        submit_lock_seconds: float = defaults.SUBMIT_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.path = str(path)
        self._busy_timeout_seconds = busy_timeout_seconds
        self._connection: sqlite3.Connection | None = None
        # One statement at a time on one connection: SQLite serialises writers anyway, and a
        # single worker keeps the connection's state simple.
        self._limiter = anyio.CapacityLimiter(1)
        self._submit_lock_seconds = submit_lock_seconds
        self._submit_turn = anyio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteTaskStore:
        journal = cls(path)
        await journal._run(lambda db: None)
        return journal

    async def close(self) -> None:
        if self._connection is not None:
            await anyio.to_thread.run_sync(self._connection.close, limiter=self._limiter)
            self._connection = None

    async def check(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    @asynccontextmanager
    async def submit_lock(self, principal: str) -> AsyncIterator[None]:
        """One submit check at a time for the whole journal: this store's own lock, then, for a file,
        a lock file beside it (`<journal>-submit-lock`, see `submit_lock.file_locked`) that every
        process opening the journal takes too (two desktop hosts, each with its own server).

        One turn for every principal rather than one each: SQLite runs the store's statements one
        at a time anyway, and the turn lasts a few of them. SQLite's own write lock cannot serve:
        `BEGIN IMMEDIATE` would have to stay open across the block's statements, which run as
        transactions of their own on this store's one connection. An in-memory journal, which no
        other process can open, and Windows, which has no `flock`, take this store's lock alone.
        """
        deadline = anyio.current_time() + self._submit_lock_seconds
        shared = (
            nullcontext() if self.path == MEMORY else file_locked(_lock_file(self.path), deadline=deadline)
        )
        try:
            async with held_until(self._submit_turn, deadline=deadline), shared:
                yield
        except TurnTimeoutError:
            raise no_turn_within(self.path, "SQLite", self._submit_lock_seconds) from None

    async def record_submission(
        self,
        model: str,
        request: dict[str, Any],
        *,
        principal: str,
        cost: float | None = None,
        currency: str | None = None,
    ) -> str:
        """Write the request (and its estimate) down, as the principal's, before it is sent; returns the
        new entry's id."""
        entry_id = new_entry_id()

        def insert(db: sqlite3.Connection) -> None:
            now = _now()
            db.execute(
                "INSERT INTO tasks (entry_id, principal, model, request_json, submit_state, status,"
                " recorded_at, updated_at, estimated_cost, cost_currency)"
                " VALUES (?, ?, ?, ?, 'sending', 'submit_outcome_unknown', ?, ?, ?, ?)",
                (entry_id, principal, model, json.dumps(request), now, now, cost, currency),
            )

        await self._run(insert)
        return entry_id

    async def record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> None:
        """APIMP created the task: attach its id and first status."""

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE tasks SET task_id = ?, submit_state = 'accepted' WHERE entry_id = ?",
                (snapshot.task_id, entry_id),
            )
            _write_snapshot(db, entry_id, snapshot)

        await self._run(update)

    async def record_unknown_outcome(self, entry_id: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE tasks SET submit_state = 'unknown', updated_at = ? WHERE entry_id = ?",
                (_now(), entry_id),
            )
        )

    async def discard(self, entry_id: str) -> None:
        """Forget a submit that provably created nothing (refused, or never connected)."""
        await self._run(lambda db: db.execute("DELETE FROM tasks WHERE entry_id = ?", (entry_id,)))

    async def record_status(self, snapshot: TaskSnapshot, *, principal: str) -> None:
        """Write a status through; a task first seen here (submitted elsewhere) gets an entry, the
        principal's. An existing entry keeps its owner."""

        def upsert(db: sqlite3.Connection) -> None:
            # The write lock first: another process sharing the file may be recording the same
            # task, and must not insert it too, nor record the same change twice.
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT entry_id FROM tasks WHERE task_id = ?", (snapshot.task_id,)).fetchone()
            if row is None:
                entry_id = new_entry_id()
                now = _now()
                # Its first status is written below, as an event, like any other.
                db.execute(
                    "INSERT INTO tasks (entry_id, task_id, principal, submit_state, status, recorded_at,"
                    " updated_at) VALUES (?, ?, ?, 'accepted', 'submit_outcome_unknown', ?, ?)",
                    (entry_id, snapshot.task_id, principal, now, now),
                )
            else:
                entry_id = row[0]
            _write_snapshot(db, entry_id, snapshot)

        await self._run(upsert)

    async def record_local_paths(self, task_id: str, paths: Sequence[str]) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE tasks SET local_paths_json = ?, updated_at = ? WHERE task_id = ?",
                (json.dumps(list(paths)), _now(), task_id),
            )
        )

    async def get(self, task_id: str, *, principal: str, with_events: bool = False) -> JournalEntry | None:
        """The principal's entry for a task id (or an entry id, for a submit whose outcome is
        unknown); None when there is none, whether or not another principal has one."""

        def select(db: sqlite3.Connection) -> JournalEntry | None:
            row = db.execute(
                "SELECT * FROM tasks WHERE (task_id = ? OR entry_id = ?) AND principal = ?",
                (task_id, task_id, principal),
            ).fetchone()
            if row is None:
                return None
            entry = _entry(row)
            if with_events:
                entry.events = [
                    TaskEvent(at=at, status=status, progress=progress)
                    for at, status, progress in db.execute(
                        "SELECT at, status, progress FROM task_events WHERE entry_id = ? ORDER BY id",
                        (entry.entry_id,),
                    )
                ]
            return entry

        return await self._run(select)

    async def owner(self, task_id: str) -> str | None:
        """The principal a task id (or entry id) belongs to; None when the journal has no such task."""

        def select(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT principal FROM tasks WHERE task_id = ? OR entry_id = ?", (task_id, task_id)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(select)

    async def recent(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[JournalEntry]:
        """The principal's entries, newest first, optionally only one status."""

        def select(db: sqlite3.Connection) -> list[JournalEntry]:
            query = "SELECT * FROM tasks WHERE principal = ?"
            parameters: tuple[Any, ...] = (principal,)
            if status is not None:
                query += " AND status = ?"
                parameters = (*parameters, status)
            query += " ORDER BY recorded_at DESC, rowid DESC LIMIT ?"
            return [_entry(row) for row in db.execute(query, (*parameters, limit))]

        return await self._run(select)

    async def prune(self, *, updated_before: datetime) -> PrunedTasks:
        """Forget ended tasks unchanged since `updated_before`; their events go with them (cascade)."""
        cutoff = journal_time(updated_before)

        def delete(db: sqlite3.Connection) -> PrunedTasks:
            doomed = db.execute(
                f"SELECT entry_id, local_paths_json FROM tasks WHERE {_PRUNABLE} AND updated_at < ?",
                (cutoff,),
            ).fetchall()
            ids = [row["entry_id"] for row in doomed]
            events = 0
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                batch = ids[start : start + _IDS_PER_STATEMENT]
                marks = ",".join("?" * len(batch))
                (count,) = db.execute(
                    f"SELECT count(*) FROM task_events WHERE entry_id IN ({marks})", batch
                ).fetchone()
                events += count
                db.execute(f"DELETE FROM tasks WHERE entry_id IN ({marks})", batch)
            paths = [path for row in doomed for path in json.loads(row["local_paths_json"])]
            return PrunedTasks(tasks=len(ids), events=events, local_paths=paths)

        return await self._run(delete)

    async def summaries(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[TaskSummary]:
        """Newest first, without the requests: SQLite cuts each prompt, so no request is read whole."""

        def select(db: sqlite3.Connection) -> list[TaskSummary]:
            query = _SUMMARY_SELECT + " WHERE principal = ?"
            parameters: tuple[Any, ...] = (defaults.PROMPT_PREVIEW_CHARS + 1, principal)
            if status is not None:
                query += " AND status = ?"
                parameters = (*parameters, status)
            query += " ORDER BY recorded_at DESC, rowid DESC LIMIT ?"
            return [_summary(row) for row in db.execute(query, (*parameters, limit))]

        return await self._run(select)

    async def submissions_since(self, *, principal: str, since: str) -> list[JournalEntry]:
        """The principal's own submits recorded at or after `since`, oldest first."""

        def select(db: sqlite3.Connection) -> list[JournalEntry]:
            rows = db.execute(
                "SELECT * FROM tasks WHERE principal = ? AND recorded_at >= ? AND request_json IS NOT NULL"
                " ORDER BY recorded_at, rowid",
                (principal, since),
            )
            return [_entry(row) for row in rows]

        return await self._run(select)

    async def spent_since(self, since: datetime, currency: str, *, principal: str) -> float:
        """The summed estimates (in `currency`) of the principal's submits recorded at or after `since`."""

        def total(db: sqlite3.Connection) -> float:
            row = db.execute(
                "SELECT COALESCE(SUM(estimated_cost), 0) FROM tasks"
                " WHERE principal = ? AND recorded_at >= ? AND cost_currency = ?",
                (principal, journal_time(since), currency),
            ).fetchone()
            return float(row[0])

        return await self._run(total)

    async def finished_generations(self, model: str, *, limit: int) -> list[FinishedGeneration]:
        """The model's recent finished tasks of every principal, their requests without prompt or images."""

        def select(db: sqlite3.Connection) -> list[FinishedGeneration]:
            rows = db.execute(
                "SELECT created_time, finished_time,"
                " json_remove(request_json, '$.input.prompt', '$.input.image', '$.input.images')"
                " FROM tasks WHERE model = ? AND status = 'finished' AND submit_state = 'accepted'"
                " ORDER BY recorded_at DESC, rowid DESC LIMIT ?",
                (model, limit),
            )
            return [
                FinishedGeneration(
                    created_time=created,
                    finished_time=finished,
                    request=json.loads(request) if request else None,
                )
                for created, finished, request in rows
            ]

        return await self._run(select)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def transaction() -> T:
            if self._connection is None:
                self._connection = _connect(self.path, busy_timeout_seconds=self._busy_timeout_seconds)
            with self._connection:  # commit on success, roll back on error
                return work(self._connection)

        return await anyio.to_thread.run_sync(transaction, limiter=self._limiter)


def _lock_file(location: str) -> Path:
    """The journal's submit lock file, beside it as SQLite's own `-wal` and `-shm` files are."""
    journal = Path(location).expanduser()
    return journal.with_name(f"{journal.name}-submit-lock")


def _connect(location: str, *, busy_timeout_seconds: float) -> sqlite3.Connection:
    if location != MEMORY:
        Path(location).expanduser().parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(location, check_same_thread=False)
    db.row_factory = sqlite3.Row
    _switch_to_wal(db, within_seconds=busy_timeout_seconds)
    db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
    db.execute("PRAGMA foreign_keys=ON")
    # Another server process may share the file: wait this long for its write to end.
    db.execute(f"PRAGMA busy_timeout={round(busy_timeout_seconds * 1000)}")
    migrate_sqlite(db)
    # A submit still "sending" belongs to a server that died mid-request: its outcome is unknown.
    with db:
        db.execute("UPDATE tasks SET submit_state = 'unknown' WHERE submit_state = 'sending'")
    return db


def _switch_to_wal(db: sqlite3.Connection, *, within_seconds: float) -> None:
    """Put the journal in WAL mode (a no-op once it is), asking again while another process does.

    Two servers opening a new journal at the same instant (two hosts started together) both
    switch it, and the switch fails at once with "database is locked", without waiting as other
    statements do: this waits, as they would, up to the busy timeout.
    """
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_SWITCH_PAUSE_SECONDS)
        else:
            return


def _write_snapshot(db: sqlite3.Connection, entry_id: str, snapshot: TaskSnapshot) -> None:
    previous = db.execute("SELECT status, progress FROM tasks WHERE entry_id = ?", (entry_id,)).fetchone()
    now = _now()
    db.execute(
        "UPDATE tasks SET status = ?, upstream_status = ?, progress = ?, video_urls_json = ?,"
        " error_message = ?, created_time = COALESCE(?, created_time),"
        " finished_time = COALESCE(?, finished_time), updated_at = ? WHERE entry_id = ?",
        (
            snapshot.status,
            snapshot.upstream_status,
            snapshot.progress,
            json.dumps(snapshot.video_urls),
            snapshot.error_message,
            snapshot.created_time,
            snapshot.finished_time,
            now,
            entry_id,
        ),
    )
    if previous is None or (previous["status"], previous["progress"]) != (snapshot.status, snapshot.progress):
        db.execute(
            "INSERT INTO task_events (entry_id, at, status, progress) VALUES (?, ?, ?, ?)",
            (entry_id, now, snapshot.status, snapshot.progress),
        )


# Ended tasks that were accepted; a submit whose outcome is unknown is a receipt and is kept.
_PRUNABLE: Final = "submit_state = 'accepted' AND status IN ('finished', 'failed')"
# SQLite's default limit on parameters per statement is 999 (older builds) or 32766.
_IDS_PER_STATEMENT: Final = 500

_SUMMARY_SELECT: Final = (
    "SELECT entry_id, task_id, principal, model, submit_state, status, progress, video_urls_json,"
    " local_paths_json,"
    " estimated_cost, cost_currency, error_message, created_time, finished_time, recorded_at, updated_at,"
    " substr(json_extract(request_json, '$.input.prompt'), 1, ?) AS prompt_head FROM tasks"
)


def _summary(row: sqlite3.Row) -> TaskSummary:
    columns = dict(zip(row.keys(), row, strict=True))
    return stored_summary(
        {
            **columns,
            "video_urls": json.loads(columns["video_urls_json"]),
            "local_paths": json.loads(columns["local_paths_json"]),
        }
    )


def _entry(row: sqlite3.Row) -> JournalEntry:
    columns = dict(zip(row.keys(), row, strict=True))
    return stored_entry(
        {
            **columns,
            "request": json.loads(columns["request_json"]) if columns["request_json"] else None,
            "video_urls": json.loads(columns["video_urls_json"]),
            "local_paths": json.loads(columns["local_paths_json"]),
        }
    )
