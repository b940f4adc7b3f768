"""The PostgreSQL task store: one journal shared by every instance of a cluster.

Selected by `APIMP_JOURNAL=postgresql://...`. It keeps the same records as the SQLite store
(and passes the same tests), in PostgreSQL's own types: JSONB for the request and the URL lists,
TIMESTAMPTZ for the journal's times, read back in the same ISO form as SQLite's.

psycopg 3 speaks to the server: its async connections fit anyio on asyncio, its pool keeps a
few connections for the instance's many waiters, and it sends no server-side prepared statements
unless told to, so it works unchanged behind PgBouncer. Several instances write at once, so a
status write locks its row (`FOR UPDATE`) before it decides whether the status changed, and
announces a change with NOTIFY. The store also keeps the polling leases of `coordination`, and
each principal's submit lock (`submit_lock`: an advisory lock, so a limit holds across instances).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final, Literal

import anyio
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store.migrations import migrate_postgresql
from apimp_video_mcp.store.records import (
    EntryStatus,
    FinishedGeneration,
    JournalEntry,
    PollingClaim,
    PrunedTasks,
    TaskEvent,
    TaskSummary,
    journal_time,
    new_entry_id,
    stored_entry,
    stored_summary,
)
from apimp_video_mcp.store.submit_lock import (
    KeyedLocks,
    TurnTimeoutError,
    held_until,
    lock_failed,
    lost_turn,
    no_turn_within,
    seconds_left,
)

Connection = psycopg.AsyncConnection[dict[str, Any]]

# The channel every status change is announced on (its payload: the task id), and where leases
# are given back. A hint only: a listener can miss one across a reconnect, so followers re-read.
CHANGES_CHANNEL: Final = "apimp_task_changes"

# The first key of every submit lock (the second: the principal's hash): "APMP" in ASCII. Advisory
# locks with two keys live apart from the one-key lock the migrations take.
SUBMIT_LOCK_NAMESPACE: Final = 0x41504D50


def describe_url(url: str) -> str:
    """The database a URL names, for messages: host, port and name, never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "a PostgreSQL URL that cannot be parsed"
    host = parts.get("host") or "localhost"
    return f"postgresql://{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class PostgresTaskStore:
    """The journal in a PostgreSQL database, connected on its first statement.

    Opening on first use keeps the database out of the server's start-up, as the SQLite store
    does; `await PostgresTaskStore.open(url)` connects (and migrates) at once instead.
    """

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = defaults.POSTGRES_POOL_MIN_CONNECTIONS,
        max_connections: int = defaults.POSTGRES_POOL_MAX_CONNECTIONS,
        submit_lock_seconds: float = defaults.SUBMIT_LOCK_TIMEOUT_SECONDS,
        statement_seconds: float = defaults.POSTGRES_STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        if max_connections < 2:
            raise ValueError("a submit lock holds one pooled connection while its block uses another")
        self.url = url
        self._min_connections = min_connections
        self._max_connections = max_connections
        self._submit_lock_seconds = submit_lock_seconds
        self._statement_seconds = statement_seconds
        self._submit_turns = KeyedLocks()
        # Submit locks hold at most half the pool, so the statements of their blocks (and every
        # other caller) always find a connection: a full pool of lock holders would wait forever.
        self._submit_slots = anyio.CapacityLimiter(max_connections // 2)
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._opening = anyio.Lock()
        # Readiness asks on a connection of its own: behind a thousand waiters' statements in the
        # pool, a healthy database would look dead to the load balancer.
        self._probe: Connection | None = None
        self._probing = anyio.Lock()

    @property
    def max_connections(self) -> int:
        """The pool's size: the most connections this store opens besides its listener and probe."""
        return self._max_connections

    def __repr__(self) -> str:
        return f"PostgresTaskStore({describe_url(self.url)!r})"

    @classmethod
    async def open(cls, url: str) -> PostgresTaskStore:
        store = cls(url)
        await store._connections()
        return store

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.close()
            self._probe = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def check(self) -> None:
        await self._connections()  # opened and migrated, or the error why not
        async with self._probing:
            try:
                if self._probe is None or self._probe.closed:
                    self._probe = await Connection.connect(
                        self.url,
                        autocommit=True,
                        row_factory=dict_row,
                        connect_timeout=int(defaults.POSTGRES_CONNECT_TIMEOUT_SECONDS),
                    )
                await self._probe.execute("SELECT 1")
            except BaseException:
                probe, self._probe = self._probe, None  # a broken or interrupted probe is not reused
                if probe is not None:
                    with anyio.CancelScope(shield=True):
                        await probe.close()
                raise

    @asynccontextmanager
    async def submit_lock(self, principal: str) -> AsyncIterator[None]:
        """The principal's advisory lock, held in a transaction of its own while the block runs.

        A transaction-level lock (`pg_advisory_xact_lock`) ends with its transaction, so however
        the block ends (an error, a cancellation, a connection lost or handed back unfinished), the
        lock is released: by the COMMIT here, by the pool's rollback, or by the server when the
        session dies. It also works behind PgBouncer's transaction pooling, where a session lock
        would stay with whichever client gets the server connection next. The wait is bounded by
        the transaction's `lock_timeout`. A COMMIT that fails means the session may have died
        during the block, lock and all, so the block's submit may have overlapped another:
        `lost_turn` says it must not be sent.
        """
        deadline = anyio.current_time() + self._submit_lock_seconds
        try:
            async with (
                self._submit_turns.held(principal, deadline=deadline),
                held_until(self._submit_slots, deadline=deadline),
            ):
                pool = await self._connections()
                conn = await self._locked_connection(pool, principal, deadline)
                try:
                    yield
                except BaseException:
                    await self._end_lock_transaction(pool, conn, "ROLLBACK")
                    raise
                if not await self._end_lock_transaction(pool, conn, "COMMIT"):
                    raise lost_turn(describe_url(self.url))
        except TurnTimeoutError:
            raise no_turn_within(describe_url(self.url), "PostgreSQL", self._submit_lock_seconds) from None

    async def record_submission(
        self,
        model: str,
        request: dict[str, Any],
        *,
        principal: str,
        cost: float | None = None,
        currency: str | None = None,
    ) -> str:
        entry_id = new_entry_id()
        await self._execute(
            "INSERT INTO tasks (entry_id, principal, model, request, submit_state, status, recorded_at,"
            " updated_at, estimated_cost, cost_currency)"
            " VALUES (%s, %s, %s, %s, 'sending', 'submit_outcome_unknown', now(), now(), %s, %s)",
            (entry_id, principal, model, Jsonb(request), cost, currency),
        )
        return entry_id

    async def record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE tasks SET task_id = %s, submit_state = 'accepted' WHERE entry_id = %s",
                (snapshot.task_id, entry_id),
            )
            await _write_snapshot(conn, entry_id, snapshot)

    async def record_unknown_outcome(self, entry_id: str) -> None:
        await self._execute(
            "UPDATE tasks SET submit_state = 'unknown', updated_at = now() WHERE entry_id = %s", (entry_id,)
        )

    async def discard(self, entry_id: str) -> None:
        await self._execute("DELETE FROM tasks WHERE entry_id = %s", (entry_id,))

    async def record_status(self, snapshot: TaskSnapshot, *, principal: str) -> None:
        async with self._transaction() as conn:
            # A task first seen here was submitted elsewhere; another instance may see it at the
            # same moment, and then one insert wins. Its first status is written below, as an event.
            await conn.execute(
                "INSERT INTO tasks (entry_id, task_id, principal, submit_state, status, recorded_at,"
                " updated_at) VALUES (%s, %s, %s, 'accepted', 'submit_outcome_unknown', now(), now())"
                " ON CONFLICT (task_id) DO NOTHING",
                (new_entry_id(), snapshot.task_id, principal),
            )
            cursor = await conn.execute("SELECT entry_id FROM tasks WHERE task_id = %s", (snapshot.task_id,))
            row = await cursor.fetchone()
            assert row is not None  # inserted above, or there already
            await _write_snapshot(conn, row["entry_id"], snapshot)

    async def record_local_paths(self, task_id: str, paths: Sequence[str]) -> None:
        await self._execute(
            "UPDATE tasks SET local_paths = %s, updated_at = now() WHERE task_id = %s",
            (Jsonb(list(paths)), task_id),
        )

    async def get(self, task_id: str, *, principal: str, with_events: bool = False) -> JournalEntry | None:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM tasks WHERE (task_id = %s OR entry_id = %s) AND principal = %s",
                (task_id, task_id, principal),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            entry = _entry(row)
            if with_events:
                cursor = await conn.execute(
                    "SELECT at, status, progress FROM task_events WHERE entry_id = %s ORDER BY id",
                    (entry.entry_id,),
                )
                entry.events = [
                    TaskEvent(
                        at=journal_time(event["at"]), status=event["status"], progress=event["progress"]
                    )
                    for event in await cursor.fetchall()
                ]
            return entry

    async def owner(self, task_id: str) -> str | None:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT principal FROM tasks WHERE task_id = %s OR entry_id = %s", (task_id, task_id)
            )
            row = await cursor.fetchone()
            return None if row is None else str(row["principal"])

    async def recent(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[JournalEntry]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM tasks WHERE principal = %(principal)s"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY recorded_at DESC, seq DESC LIMIT %(limit)s",
                {"principal": principal, "status": status, "limit": limit},
            )
            return [_entry(row) for row in await cursor.fetchall()]

    async def prune(self, *, updated_before: datetime) -> PrunedTasks:
        """Forget ended tasks unchanged since `updated_before`; their events go with them (cascade)."""
        async with self._transaction(bounded=False) as conn:
            cursor = await conn.execute(
                "WITH doomed AS (DELETE FROM tasks WHERE submit_state = 'accepted'"
                " AND status IN ('finished', 'failed') AND updated_at < %s RETURNING entry_id, local_paths)"
                " SELECT entry_id, local_paths,"
                " (SELECT count(*) FROM task_events WHERE task_events.entry_id = doomed.entry_id) AS events"
                " FROM doomed",
                (updated_before,),
            )
            rows = await cursor.fetchall()
        return PrunedTasks(
            tasks=len(rows),
            events=sum(row["events"] for row in rows),
            local_paths=[path for row in rows for path in row["local_paths"]],
        )

    async def summaries(
        self, *, principal: str, status: EntryStatus | None = None, limit: int = 20
    ) -> list[TaskSummary]:
        """Newest first, without the requests: the server cuts each prompt, so none is sent whole."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT entry_id, task_id, principal, model, submit_state, status, progress, video_urls,"
                " local_paths,"
                " estimated_cost, cost_currency, error_message, created_time, finished_time,"
                " recorded_at, updated_at,"
                " left(request -> 'input' ->> 'prompt', %(head)s) AS prompt_head FROM tasks"
                " WHERE principal = %(principal)s AND (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY recorded_at DESC, seq DESC LIMIT %(limit)s",
                {
                    "principal": principal,
                    "status": status,
                    "limit": limit,
                    "head": defaults.PROMPT_PREVIEW_CHARS + 1,
                },
            )
            return [stored_summary(_with_iso_times(row)) for row in await cursor.fetchall()]

    async def submissions_since(self, *, principal: str, since: str) -> list[JournalEntry]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM tasks WHERE principal = %s AND recorded_at >= %s::timestamptz"
                " AND request IS NOT NULL ORDER BY recorded_at, seq",
                (principal, since),
            )
            return [_entry(row) for row in await cursor.fetchall()]

    async def spent_since(self, since: datetime, currency: str, *, principal: str) -> float:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT COALESCE(SUM(estimated_cost), 0) AS spent FROM tasks"
                " WHERE principal = %s AND recorded_at >= %s AND cost_currency = %s",
                (principal, since, currency),
            )
            row = await cursor.fetchone()
            return float(row["spent"]) if row is not None else 0.0

    async def finished_generations(self, model: str, *, limit: int) -> list[FinishedGeneration]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT created_time, finished_time,"
                " request #- '{input,prompt}' #- '{input,image}' #- '{input,images}' AS request"
                " FROM tasks WHERE model = %s AND status = 'finished' AND submit_state = 'accepted'"
                " ORDER BY recorded_at DESC, seq DESC LIMIT %s",
                (model, limit),
            )
            return [FinishedGeneration.model_validate(row) for row in await cursor.fetchall()]

    # --- Polling leases and change notifications (see `coordination`) -------------------------

    async def claim_polling(self, task_id: str, owner: str, lease_seconds: float) -> PollingClaim:
        # One statement: the claim, and (from the snapshot before it) how long a holder has left.
        async with self._connection() as conn:
            cursor = await conn.execute(
                "WITH claimed AS ("
                " INSERT INTO task_polls (task_id, owner, lease_until)"
                " VALUES (%(task)s, %(owner)s, now() + make_interval(secs => %(lease)s))"
                " ON CONFLICT (task_id) DO UPDATE"
                " SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until"
                " WHERE task_polls.owner = EXCLUDED.owner OR task_polls.lease_until < now()"
                " RETURNING owner)"
                " SELECT EXISTS (SELECT 1 FROM claimed) AS held,"
                " (SELECT extract(epoch FROM lease_until - now())::float8 FROM task_polls"
                "  WHERE task_id = %(task)s) AS lapses_in_seconds",
                {"task": task_id, "owner": owner, "lease": lease_seconds},
            )
            row = await cursor.fetchone()
        assert row is not None  # a SELECT without FROM always has its row
        held = bool(row["held"])
        return PollingClaim(held=held, lapses_in_seconds=None if held else row["lapses_in_seconds"])

    async def renew_polling(self, owner: str, lease_seconds: float) -> None:
        await self._execute(
            "UPDATE task_polls SET lease_until = now() + make_interval(secs => %s) WHERE owner = %s",
            (lease_seconds, owner),
        )

    async def release_polling(self, task_id: str, owner: str) -> None:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM task_polls WHERE task_id = %s AND owner = %s RETURNING task_id", (task_id, owner)
            )
            if await cursor.fetchone() is not None:  # whoever still follows the task may take it now
                await _notify_change(conn, task_id)

    async def listen_for_changes(self, on_change: Callable[[str | None], None]) -> None:
        """Listen on a connection of its own (a pooled one would be handed to others between notices)."""
        async with await Connection.connect(
            self.url, autocommit=True, connect_timeout=int(defaults.POSTGRES_CONNECT_TIMEOUT_SECONDS)
        ) as conn:
            await conn.execute(f"LISTEN {CHANGES_CHANNEL}")
            on_change(None)  # whatever changed before this connection listened is read again
            async for notice in conn.notifies():
                on_change(notice.payload)

    # --- Connections ---------------------------------------------------------------------------

    async def _connections(self) -> AsyncConnectionPool[Connection]:
        """The pool, opened (after bringing the schema up to date) by the first caller."""
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                await self._migrate()
                pool = AsyncConnectionPool(
                    self.url,
                    connection_class=Connection,
                    kwargs={"autocommit": True, "row_factory": dict_row},
                    min_size=self._min_connections,
                    max_size=self._max_connections,
                    timeout=defaults.POSTGRES_CONNECT_TIMEOUT_SECONDS,
                    open=False,
                )
                await pool.open(wait=True, timeout=defaults.POSTGRES_CONNECT_TIMEOUT_SECONDS)
                self._pool = pool
        return self._pool

    async def _migrate(self) -> None:
        """Apply the schema migrations over one connection of its own, with a clear error if none."""
        try:
            conn = await Connection.connect(
                self.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=int(defaults.POSTGRES_CONNECT_TIMEOUT_SECONDS),
            )
        except psycopg.OperationalError as exc:
            raise ConfigurationError(
                f"Cannot open the task journal at {describe_url(self.url)} (APIMP_JOURNAL): "
                f"{_first_line(exc)}"
            ) from None
        async with conn:
            await migrate_postgresql(conn)

    @asynccontextmanager
    async def _connection(self, *, bounded: bool = True) -> AsyncIterator[Connection]:
        """A pooled connection for the block, which must end within the statement timeout (unless
        not `bounded`: pruning a big journal may take long): a database that stops answering is
        then a clear failure of its own, and the connection, cut mid-statement, is replaced."""
        pool = await self._connections()
        async with pool.connection() as conn:
            with anyio.move_on_after(self._statement_seconds if bounded else math.inf) as scope:
                yield conn
        if scope.cancelled_caught:
            raise TimeoutError(f"PostgreSQL did not answer within {self._statement_seconds:g} s")

    @asynccontextmanager
    async def _transaction(self, *, bounded: bool = True) -> AsyncIterator[Connection]:
        async with self._connection(bounded=bounded) as conn, conn.transaction():
            yield conn

    async def _execute(self, query: str, params: Sequence[Any]) -> None:
        async with self._connection() as conn:
            await conn.execute(query, params)

    async def _locked_connection(
        self, pool: AsyncConnectionPool[Connection], principal: str, deadline: float
    ) -> Connection:
        """A pooled connection in a transaction holding the principal's submit lock, by `deadline`."""
        try:
            conn = await pool.getconn(timeout=max(seconds_left(deadline), 0.001))
        except PoolTimeout:
            raise TurnTimeoutError from None
        try:
            wait_ms = max(round(seconds_left(deadline) * 1000), 1)
            await conn.execute(f"BEGIN; SET LOCAL lock_timeout = {wait_ms}")
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _submit_lock_keys(principal))
        except BaseException as exc:
            await self._end_lock_transaction(pool, conn, "ROLLBACK")
            if isinstance(exc, psycopg.errors.LockNotAvailable):  # the lock_timeout ran out
                raise TurnTimeoutError from None
            if isinstance(exc, psycopg.Error):
                raise lock_failed("PostgreSQL", exc) from exc
            raise
        return conn

    async def _end_lock_transaction(
        self, pool: AsyncConnectionPool[Connection], conn: Connection, end: Literal["COMMIT", "ROLLBACK"]
    ) -> bool:
        """End the lock's transaction and give the connection back, whatever cancels the caller;
        True when the session lived to the end (so its lock was held throughout).

        A connection that cannot end the transaction in time is closed: the server then ends the
        session, and its lock with it. (A pool closed meanwhile closes what it is given back.)
        """
        ended = False
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._submit_lock_seconds):
                    await conn.execute(end)
                ended = True
            except Exception:
                await conn.close()
            await pool.putconn(conn)
        return ended


async def _write_snapshot(conn: Connection, entry_id: str, snapshot: TaskSnapshot) -> None:
    """Write the status through, and an event when status or progress changed (inside a transaction)."""
    cursor = await conn.execute(
        "SELECT status, progress, submit_state FROM tasks WHERE entry_id = %s FOR UPDATE", (entry_id,)
    )
    previous = await cursor.fetchone()
    await conn.execute(
        "UPDATE tasks SET status = %s, upstream_status = %s, progress = %s, video_urls = %s,"
        " error_message = %s, created_time = COALESCE(%s, created_time),"
        " finished_time = COALESCE(%s, finished_time), updated_at = now() WHERE entry_id = %s",
        (
            snapshot.status,
            snapshot.upstream_status,
            snapshot.progress,
            Jsonb(snapshot.video_urls),
            snapshot.error_message,
            snapshot.created_time,
            snapshot.finished_time,
            entry_id,
        ),
    )
    if previous is None or (previous["status"], previous["progress"]) != (snapshot.status, snapshot.progress):
        await conn.execute(
            "INSERT INTO task_events (entry_id, at, status, progress) VALUES (%s, now(), %s, %s)",
            (entry_id, snapshot.status, snapshot.progress),
        )
        await _notify_change(conn, snapshot.task_id)


async def _notify_change(conn: Connection, task_id: str) -> None:
    """Tell every listening instance the task changed; sent when the transaction commits."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, task_id))


def _submit_lock_keys(principal: str) -> tuple[int, int]:
    """The two int4 keys of a principal's submit lock: the namespace and 32 bits of its id's hash.

    Two principals sharing a hash would only take turns with each other: slower, never wrong.
    """
    digest = hashlib.blake2b(principal.encode(), digest_size=4).digest()
    return SUBMIT_LOCK_NAMESPACE, int.from_bytes(digest, "big", signed=True)


def _with_iso_times(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "recorded_at": journal_time(row["recorded_at"]),
        "updated_at": journal_time(row["updated_at"]),
    }


def _entry(row: Mapping[str, Any]) -> JournalEntry:
    return stored_entry(_with_iso_times(row))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
