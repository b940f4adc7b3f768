"""The whole server on a PostgreSQL journal: APIMP_JOURNAL=postgresql://... is all it takes."""

from __future__ import annotations

from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server import build_server
from apimp_video_mcp.store import SqliteTaskStore, task_store_for
from apimp_video_mcp.store.postgres import PostgresTaskStore
from tests.support import Upstream, fast_settings, structured, text_of

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a lighthouse at dusk"}}


async def test_tools_submit_wait_and_list_through_a_postgresql_journal(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", journal_path=postgres_url)
    async with Client(build_server(settings)) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        with anyio.fail_after(10):
            waited = structured(await client.call_tool("wait_for_video", {"task_id": task_id}))
        listed = structured(await client.call_tool("list_tasks", {}))
        status = structured(await client.call_tool("get_status", {"task_id": task_id}))

    assert waited["status"] == "finished"
    assert [(entry["task_id"], entry["prompt_preview"]) for entry in listed["tasks"]] == [
        (task_id, SUBMIT["input"]["prompt"])  # type: ignore[index]
    ]
    assert status["source"] == "journal"
    assert status["video_urls"] == waited["video_urls"]


def test_the_pool_size_reaches_the_postgresql_store_and_a_file_ignores_it(tmp_path: Path) -> None:
    store = task_store_for("postgresql://apimp@127.0.0.1/journal", pool_size=20)

    assert isinstance(store, PostgresTaskStore)
    assert store.max_connections == 20
    assert isinstance(task_store_for(str(tmp_path / "journal.sqlite3"), pool_size=20), SqliteTaskStore)


def test_a_postgresql_url_is_kept_as_it_is() -> None:
    url = "postgresql://apimp@db.internal:5432/apimp?sslmode=require"

    assert Settings.from_env({"APIMP_JOURNAL": url}).journal_path == url


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    store = task_store_for("postgresql://apimp:hunter2@127.0.0.1:1/journal?connect_timeout=2")

    with pytest.raises(ConfigurationError) as raised:
        await store.recent(principal=LOCAL)
    await store.close()

    assert "postgresql://127.0.0.1:1/journal" in str(raised.value)
    assert "APIMP_JOURNAL" in str(raised.value)
    assert "hunter2" not in str(raised.value)


async def test_a_journal_that_cannot_answer_is_named_to_the_model_and_nothing_is_sent(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    """The database restarted under the server: the tools say the journal failed, and for what."""
    settings = fast_settings(upstream.base_url, tmp_path / "videos", journal_path=postgres_url)
    async with Client(build_server(settings)) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        failed = await client.call_tool("get_status", {"task_id": task_id})
        status_requests_after_failure = len(upstream.simulator.requests_to("/api/generate/status/"))
        recovered = structured(await client.call_tool("get_status", {"task_id": task_id}))

    assert failed.is_error
    assert f"The task journal could not be read to look up task {task_id} (" in text_of(failed)
    assert "Nothing was sent to APIMP" in text_of(failed)
    assert status_requests_after_failure == 0  # the failed look-up asked APIMP nothing
    assert recovered["task_id"] == task_id


async def test_a_database_that_stops_answering_fails_a_statement_by_its_deadline(postgres_url: str) -> None:
    """A lock never released (or a failover, a partition): the journal says so, it does not hang."""
    store = PostgresTaskStore(postgres_url, statement_seconds=0.3)
    await store.check()  # migrated and connected before the table is locked
    async with await psycopg.AsyncConnection.connect(postgres_url) as admin:
        await admin.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")  # held until the rollback
        with anyio.fail_after(10), pytest.raises(TimeoutError, match=r"did not answer within 0\.3 s"):
            await store.get("task_1", principal=LOCAL)
        await admin.rollback()
    with anyio.fail_after(10):
        after = await store.get("task_1", principal=LOCAL)  # a fresh connection replaced the cut one
    await store.close()

    assert after is None


async def test_a_tool_on_a_database_that_stops_answering_says_so_by_its_deadline(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", journal_path=postgres_url)
    store = PostgresTaskStore(postgres_url, statement_seconds=0.3)
    async with Client(build_server(settings, store=store)) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        async with await psycopg.AsyncConnection.connect(postgres_url) as admin:
            await admin.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            with anyio.fail_after(10):
                stuck = await client.call_tool("get_status", {"task_id": task_id})
            await admin.rollback()

    assert stuck.is_error
    assert f"could not be read to look up task {task_id} (PostgreSQL did not answer within 0.3 s)" in text_of(
        stuck
    )
