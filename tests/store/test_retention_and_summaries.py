"""Retention, listings and the status index, held by both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store import TaskStore, is_postgres_url

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"


async def task(journal: TaskStore, task_id: str, *statuses: str, prompt: str = "a heron") -> str:
    entry_id = await journal.record_submission(
        VEO, {"model": VEO, "input": {"prompt": prompt}}, principal=LOCAL
    )
    await journal.record_accepted(
        entry_id, TaskSnapshot.from_wire({"task_id": task_id, "status": "not_started"})
    )
    for status in statuses:
        await journal.record_status(
            TaskSnapshot.from_wire({"task_id": task_id, "status": status, "progress": 50}), principal=LOCAL
        )
    return entry_id


async def test_pruning_removes_ended_tasks_older_than_the_cutoff_with_their_events(
    journal: TaskStore,
) -> None:
    finished = await task(journal, "task_done", "running", "finished")
    await journal.record_local_paths("task_done", ["/videos/task_done.mp4"])
    await task(journal, "task_failed", "failed")
    await task(journal, "task_running", "running")
    await task(journal, "task_queued")
    unknown = await journal.record_submission(VEO, {"model": VEO}, principal=LOCAL)
    await journal.record_unknown_outcome(unknown)

    nothing = await journal.prune(updated_before=datetime.now(UTC) - timedelta(days=1))
    pruned = await journal.prune(updated_before=datetime.now(UTC) + timedelta(seconds=1))
    left = {
        summary.task_id or summary.entry_id for summary in await journal.summaries(principal=LOCAL, limit=100)
    }

    assert (nothing.tasks, nothing.events, nothing.local_paths) == (0, 0, [])
    assert pruned.tasks == 2
    assert pruned.events == 5  # not_started, running, finished; not_started, failed
    assert pruned.local_paths == ["/videos/task_done.mp4"]
    assert left == {"task_running", "task_queued", unknown}  # an unknown outcome is a receipt: kept
    assert await journal.get("task_done", principal=LOCAL) is None
    assert await journal.get(finished, principal=LOCAL) is None


async def test_summaries_cut_the_prompt_and_leave_the_request_out(journal: TaskStore) -> None:
    long_prompt = "é" + "x" * 5_000
    await task(journal, "task_long", prompt=long_prompt)
    await task(journal, "task_short", "finished", prompt="short")
    unknown = await journal.record_submission(
        VEO, {"model": VEO, "input": {"prompt": "lost"}}, principal=LOCAL
    )

    everything = await journal.summaries(principal=LOCAL, limit=10)
    finished = await journal.summaries(principal=LOCAL, status="finished")

    by_id = {summary.task_id or summary.entry_id: summary for summary in everything}
    assert by_id["task_long"].prompt_preview == long_prompt[: defaults.PROMPT_PREVIEW_CHARS] + "…"
    assert by_id["task_short"].prompt_preview == "short"
    assert by_id[unknown].status == "submit_outcome_unknown"
    assert by_id[unknown].prompt_preview == "lost"
    assert [summary.task_id for summary in finished] == ["task_short"]
    assert "request" not in by_id["task_long"].model_dump()


async def test_the_status_filter_is_served_by_an_index(journal: TaskStore, location: str) -> None:
    await task(journal, "task_1", "finished")

    if is_postgres_url(location):
        with psycopg.connect(location) as db:
            indexes = db.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_by_status'"
            ).fetchall()
            db.execute("SET enable_seqscan = off")  # a table this small would be scanned anyway
            plan = db.execute(
                "EXPLAIN SELECT entry_id FROM tasks WHERE principal = 'local' AND status = 'finished'"
                " ORDER BY recorded_at DESC, seq DESC LIMIT 20"
            ).fetchall()
        assert indexes
        assert "tasks_by_status" in str(plan)
    else:
        with sqlite3.connect(location) as db:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT entry_id FROM tasks"
                " WHERE principal = 'local' AND status = 'finished'"
                " ORDER BY recorded_at DESC, rowid DESC LIMIT 20"
            ).fetchall()
        assert "tasks_by_status" in str(plan)
        assert "TEMP B-TREE" not in str(plan)  # ordered by the index too, not sorted afterwards
