"""The submit lock (`TaskStore.submit_lock`): a principal's submits take turns across every store on
one journal, as they would across server processes, and a turn always ends, however its block does.

Two stores opened on the same journal stand for two processes: PostgreSQL sessions of their own
(advisory locks), or SQLite connections and lock-file descriptors of their own (`flock`). Every
test runs on both backends unless it is about PostgreSQL's connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import anyio
import psycopg
import pytest

from apimp_video_mcp.errors import JournalUnavailableError
from apimp_video_mcp.store import SqliteTaskStore, TaskStore, is_postgres_url
from apimp_video_mcp.store.postgres import SUBMIT_LOCK_NAMESPACE, PostgresTaskStore
from apimp_video_mcp.store.submit_lock import KeyedLocks

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"
TEAM = "key:team"
SINCE = datetime(2000, 1, 1, tzinfo=UTC)
SINCE_ISO = SINCE.isoformat(timespec="milliseconds")

Opener = Callable[..., TaskStore]


@pytest.fixture
async def open_store(location: str) -> AsyncIterator[Opener]:
    """Opens stores on the test's journal (each standing for a server process); closes them after."""
    async with AsyncExitStack() as stack:

        def opened(**options: Any) -> TaskStore:
            store: TaskStore = (
                PostgresTaskStore(location, **options)
                if is_postgres_url(location)
                else SqliteTaskStore(location, **options)
            )
            stack.push_async_callback(store.close)
            return store

        yield opened


async def test_one_principals_submits_take_turns_across_stores(open_store: Opener) -> None:
    stores = [open_store(), open_store()]
    inside = peak = 0

    async def submit(store: TaskStore) -> None:
        nonlocal inside, peak
        async with store.submit_lock(TEAM):
            inside += 1
            peak = max(peak, inside)
            # What a submit does in its turn: read what the principal has, then write one more.
            await store.submissions_since(principal=TEAM, since=SINCE_ISO)
            await store.record_submission(VEO, {}, principal=TEAM)
            inside -= 1

    async with anyio.create_task_group() as group:
        for index in range(16):
            group.start_soon(submit, stores[index % 2])

    assert peak == 1
    assert len(await stores[0].submissions_since(principal=TEAM, since=SINCE_ISO)) == 16


async def test_a_turn_ends_when_its_block_raises(open_store: Opener) -> None:
    first, second = open_store(), open_store(submit_lock_seconds=5)

    with pytest.raises(RuntimeError, match="the check failed"):
        async with first.submit_lock(TEAM):
            raise RuntimeError("the check failed")

    with anyio.fail_after(10):
        async with second.submit_lock(TEAM):
            pass
        async with first.submit_lock(TEAM):  # and the first store's own state is clean again
            pass


async def test_a_turn_ends_when_its_holder_or_a_waiter_is_cancelled(open_store: Opener) -> None:
    first, second = open_store(), open_store(submit_lock_seconds=5)
    entered = anyio.Event()

    async def hold_forever() -> None:
        async with first.submit_lock(TEAM):
            entered.set()
            await anyio.Event().wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(hold_forever)
            await entered.wait()
            with anyio.move_on_after(0.2) as waiting:  # a waiter, cancelled while it waits
                async with second.submit_lock(TEAM):
                    pytest.fail("the turn is held by the first store")
            assert waiting.cancelled_caught
            group.cancel_scope.cancel()  # the holder, cancelled while it holds the turn

        async with second.submit_lock(TEAM):
            pass
        async with first.submit_lock(TEAM):
            pass


async def test_a_turn_not_granted_in_time_is_refused_and_says_nothing_was_sent(open_store: Opener) -> None:
    first, impatient = open_store(), open_store(submit_lock_seconds=0.1)

    async with first.submit_lock(TEAM):
        with anyio.fail_after(10), pytest.raises(JournalUnavailableError) as refused:
            async with impatient.submit_lock(TEAM):
                pytest.fail("the turn is held by the first store")

    message = str(refused.value)
    assert "did not give this submit its turn within 0.1 s" in message
    assert "Nothing was sent or charged" in message
    assert "APIMP_JOURNAL" in message
    assert "journal.sqlite3" not in message  # no path or host for callers
    assert "127.0.0.1" not in message


async def test_a_process_forgets_the_locks_of_principals_no_longer_submitting() -> None:
    locks = KeyedLocks()

    async with locks.held("key:a", deadline=anyio.current_time() + 5):
        assert len(locks) == 1
    with pytest.raises(RuntimeError):
        async with locks.held("key:b", deadline=anyio.current_time() + 5):
            raise RuntimeError

    assert len(locks) == 0


# --- PostgreSQL: one advisory lock per principal, over a bounded pool -----------------------------


async def test_other_principals_do_not_wait_on_postgresql(postgres_url: str) -> None:
    first = PostgresTaskStore(postgres_url)
    second = PostgresTaskStore(postgres_url, submit_lock_seconds=5)
    try:
        with anyio.fail_after(10):
            async with first.submit_lock("key:alice"), second.submit_lock("key:bob"):
                pass
    finally:
        await first.close()
        await second.close()


async def test_more_parallel_turns_than_pooled_connections_all_come(postgres_url: str) -> None:
    """Each turn holds one pooled connection and needs another for its statements: a pool full of
    turns would wait on itself. Here 24 turns of 6 principals share a pool of 2."""
    store = PostgresTaskStore(postgres_url, max_connections=2)
    done = 0

    async def submit(principal: str) -> None:
        nonlocal done
        async with store.submit_lock(principal):
            await store.spent_since(SINCE, "USD", principal=principal)
            await store.record_submission(VEO, {}, principal=principal)
        done += 1

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for index in range(24):
                    group.start_soon(submit, f"key:{index % 6}")
    finally:
        await store.close()

    assert done == 24


async def test_a_turn_whose_connection_dies_fails_and_frees_the_principal(postgres_url: str) -> None:
    first = PostgresTaskStore(postgres_url)
    second = PostgresTaskStore(postgres_url, submit_lock_seconds=5)
    try:
        with anyio.fail_after(20):
            with pytest.raises(JournalUnavailableError) as lost:
                async with first.submit_lock(TEAM):
                    await terminate_submit_lock_holders(postgres_url)
            async with second.submit_lock(TEAM):  # the server released the dead session's lock
                pass
            async with first.submit_lock(TEAM):  # and the pool replaced the dead connection
                pass
    finally:
        await first.close()
        await second.close()

    assert "lost its connection" in str(lost.value)
    assert "NOT submitted" in str(lost.value)


async def terminate_submit_lock_holders(url: str) -> None:
    """End every session of this database holding a submit lock, as a dropped connection would."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (SUBMIT_LOCK_NAMESPACE,),
        )
        assert [row[0] for row in await cursor.fetchall()] == [True]
