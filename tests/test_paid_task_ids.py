"""A paid task never loses its id: whatever the journal or the upstream does after the money is spent.

Each case goes through the SDK's real Client into the server, with the simulator (or a thin
hostile wrapper around it) on loopback as APIMP, and a real SQLite journal on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from apimp_video_mcp.config import Settings
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.pollers import ScaledClock
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import Simulator, running_app
from apimp_video_mcp.store import SqliteTaskStore
from tests.support import Upstream, fast_settings, structured, text_of

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a paper boat on a rainy street"}}
# Journal retries wait 1 s, 2 s, ...: a hundred times faster here.
FAST_CLOCK = ScaledClock(scale=100.0)


def journal_rows(settings: Settings) -> list[tuple[Any, ...]]:
    """What is on disk, read by a connection of our own (not the server's)."""
    with sqlite3.connect(settings.journal_path) as db:
        return db.execute("SELECT task_id, submit_state, status FROM tasks").fetchall()


class ObservedStore(SqliteTaskStore):
    """The real store, telling the test when an accepted task finally made it to disk."""

    def __init__(self, path: str, *, busy_timeout_seconds: float) -> None:
        super().__init__(path, busy_timeout_seconds=busy_timeout_seconds)
        self.accepted = anyio.Event()

    async def record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> None:
        await super().record_accepted(entry_id, snapshot)
        self.accepted.set()


@asynccontextmanager
async def locking_upstream(simulator: Simulator, journal_path: str) -> AsyncIterator[tuple[str, list[Any]]]:
    """The simulator, except that while it creates a task another process takes the journal's write
    lock and keeps it: the server's journal write after the accepted submit finds it locked."""
    holders: list[sqlite3.Connection] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/generate/submit":
            holder = sqlite3.connect(journal_path, isolation_level=None, check_same_thread=False)
            holder.execute("BEGIN IMMEDIATE")  # a write transaction, held past the busy timeout
            holders.append(holder)
        await simulator.app(scope, receive, send)

    try:
        async with running_app(app) as base_url:
            yield base_url, holders
    finally:
        for holder in holders:
            holder.close()


async def test_an_id_whose_journal_write_finds_the_file_locked_is_returned_and_recorded_later(
    simulator: Simulator, tmp_path: Path
) -> None:
    journal_path = str(tmp_path / "journal.sqlite3")
    async with locking_upstream(simulator, journal_path) as (base_url, holders):
        settings = fast_settings(base_url, tmp_path / "videos", journal_path=journal_path)
        store = ObservedStore(journal_path, busy_timeout_seconds=0.05)
        async with Client(build_server(settings, store=store, clock=FAST_CLOCK)) as client:
            result = await client.call_tool("submit_video", SUBMIT)
            data = structured(result)
            recorded_while_locked = journal_rows(settings)
            status_while_locked = await client.call_tool("get_status", {"task_id": data["task_id"]})
            [holder] = holders
            holder.rollback()  # the other process lets go
            with anyio.fail_after(10):
                await store.accepted.wait()  # retried in the background
            [entry] = structured(await client.call_tool("list_tasks", {}))["tasks"]

    [sent] = simulator.requests_to("/api/generate/submit")
    task_id = data["task_id"]
    assert task_id == next(iter(simulator.tasks))
    assert "could not be recorded" in data["journal_warning"]
    assert "locked" in data["journal_warning"]
    assert task_id in text_of(result)
    assert "could not be recorded" in text_of(result)
    assert recorded_while_locked == [(None, "sending", "submit_outcome_unknown")]
    assert (
        structured(status_while_locked)["task_id"] == task_id
    )  # a journal that cannot write hides no status
    assert entry["task_id"] == task_id
    assert entry["status"] == "not_started"
    assert sent.json() == SUBMIT


class ReadOnlyAfterSubmit(SqliteTaskStore):
    """The journal file becomes read-only once the submission is written (as when its disk is
    remounted read-only): a real SQLite handle opened read-only refuses every later write."""

    async def record_submission(self, model: str, request: dict[str, Any], **estimate: Any) -> str:
        entry_id = await super().record_submission(model, request, **estimate)
        await self.close()
        self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return entry_id


class FullAfterSubmit(SqliteTaskStore):
    """A full disk, simulated: every write after the submission fails as SQLite reports it."""

    async def record_submission(self, model: str, request: dict[str, Any], **estimate: Any) -> str:
        entry_id = await super().record_submission(model, request, **estimate)
        self.full = True
        return entry_id

    async def _run(self, work: Any) -> Any:
        if getattr(self, "full", False):
            raise sqlite3.OperationalError("database or disk is full")
        return await super()._run(work)


@pytest.mark.parametrize(
    ("store_type", "reason"),
    [(ReadOnlyAfterSubmit, "readonly database"), (FullAfterSubmit, "disk is full")],
)
async def test_an_id_the_journal_cannot_record_is_still_returned_with_a_warning(
    upstream: Upstream, tmp_path: Path, store_type: type[SqliteTaskStore], reason: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    store = store_type(settings.journal_path)
    async with Client(build_server(settings, store=store, clock=FAST_CLOCK)) as client:
        result = await client.call_tool("submit_video", SUBMIT)

    data = structured(result)
    assert data["task_id"] in upstream.simulator.tasks
    assert reason in data["journal_warning"]
    assert "Keep this task_id" in data["journal_warning"]
    assert journal_rows(settings) == [(None, "sending", "submit_outcome_unknown")]


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>502 Bad Gateway</body></html>",
        {"code": 200, "data": {"status": "not_started"}},
        {"code": 200, "data": {"task_id": "", "status": "not_started"}},
        {"code": 200, "data": {"task_id": "../../admin", "status": "not_started"}},
        {"code": 200, "data": "task_abc"},
    ],
)
async def test_a_200_answer_without_a_task_id_is_an_unknown_outcome(
    client: Client, upstream: Upstream, body: object
) -> None:
    for _ in range(2):  # the second such answer must not collide with the first
        upstream.simulator.inject_fault(path_prefix="/api/generate/submit", status=200, body=body)
        failed = await client.call_tool("submit_video", SUBMIT)
        assert failed.is_error
        assert "may have been created" in text_of(failed)
        assert "NOT resubmitted" in text_of(failed)

    listed = structured(await client.call_tool("list_tasks", {}))["tasks"]
    assert [entry["status"] for entry in listed] == ["submit_outcome_unknown"] * 2
    assert [entry["task_id"] for entry in listed] == [None, None]


@pytest.mark.parametrize("bad_key", ["sk-simulator\r\nX-Injected: 1", "sk-simulator\x00", "sk-simulätor"])
async def test_a_submit_that_never_left_the_machine_is_not_kept_as_maybe_charged(
    upstream: Upstream, tmp_path: Path, bad_key: str
) -> None:
    # model_copy skips validation, as an embedder's code may: the client must still tell it apart.
    settings = fast_settings(upstream.base_url, tmp_path / "videos").model_copy(
        update={"api_key": SecretStr(bad_key)}
    )
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("submit_video", SUBMIT)
        listed = structured(await client.call_tool("list_tasks", {}))["tasks"]

    assert failed.is_error
    assert "NOT submitted" in text_of(failed)
    assert "APIMP_API_KEY" in text_of(failed)
    assert "simul" not in text_of(failed)  # no part of the key
    assert listed == []
    assert upstream.simulator.requests_to("/api/generate/submit") == []


async def test_a_status_answer_about_another_task_is_rejected_and_not_journaled(
    client: Client, upstream: Upstream
) -> None:
    task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
    upstream.simulator.inject_fault(
        path_prefix="/api/generate/status",
        status=200,
        body={"code": 200, "data": {"task_id": "task_someone_else", "status": "finished", "progress": 100}},
    )

    answered = await client.call_tool("get_status", {"task_id": task_id})
    listed = structured(await client.call_tool("list_tasks", {}))["tasks"]

    assert answered.is_error
    assert "task_someone_else" in text_of(answered)
    assert [entry["task_id"] for entry in listed] == [task_id]
    assert listed[0]["status"] == "not_started"
