"""The task store's contract, held by both backends: every test runs on SQLite and on PostgreSQL.

PostgreSQL is a real server (started by the session, see `tests/support/postgres.py`), each test
on a database of its own.
"""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store import TaskStore, task_store_for

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"


def snapshot(task_id: str, status: str, progress: int | None = None) -> TaskSnapshot:
    return TaskSnapshot.from_wire({"task_id": task_id, "status": status, "progress": progress})


async def test_a_submission_is_written_before_it_is_sent_and_settled_after(journal: TaskStore) -> None:
    entry_id = await journal.record_submission(VEO, {"model": VEO, "input": {"prompt": "x"}}, principal=LOCAL)
    pending = await journal.get(entry_id, principal=LOCAL)
    await journal.record_accepted(entry_id, snapshot("task_1", "not_started"))
    accepted = await journal.get("task_1", principal=LOCAL)

    assert pending is not None
    assert pending.status == "submit_outcome_unknown"
    assert pending.request == {"model": VEO, "input": {"prompt": "x"}}
    assert accepted is not None
    assert accepted.entry_id == entry_id
    assert accepted.submit_state == "accepted"
    assert accepted.status == "not_started"
    assert accepted.recorded_at <= accepted.updated_at


async def test_every_change_is_an_event_and_repeats_are_not(journal: TaskStore) -> None:
    entry_id = await journal.record_submission(VEO, {}, principal=LOCAL)
    await journal.record_accepted(entry_id, snapshot("task_1", "not_started"))
    for state in [("running", 10), ("running", 10), ("running", 55), ("finished", 100)]:
        await journal.record_status(snapshot("task_1", *state), principal=LOCAL)

    entry = await journal.get("task_1", principal=LOCAL, with_events=True)

    assert entry is not None
    assert [(event.status, event.progress) for event in entry.events] == [
        ("not_started", None),
        ("running", 10),
        ("running", 55),
        ("finished", 100),
    ]
    assert entry.is_terminal


async def test_a_task_first_seen_by_its_status_gets_an_entry_and_a_first_event(journal: TaskStore) -> None:
    await journal.record_status(snapshot("task_elsewhere", "running"), principal=LOCAL)

    entry = await journal.get("task_elsewhere", principal=LOCAL, with_events=True)

    assert entry is not None
    assert (entry.submit_state, entry.status, entry.request) == ("accepted", "running", None)
    assert [(event.status, event.progress) for event in entry.events] == [("running", None)]


async def test_the_last_status_is_kept_whole(journal: TaskStore) -> None:
    finished = TaskSnapshot.from_wire(
        {
            "task_id": "task_1",
            "status": "finished",
            "progress": 100,
            "created_time": "2026-12-01 10:00:00",
            "finished_time": "2026-12-01 10:02:00",
            "files": [{"file_url": "https://cdn.example.com/v.mp4", "file_type": "video"}],
        }
    )
    await journal.record_status(finished, principal=LOCAL)
    await journal.record_local_paths("task_1", ["/videos/task_1.mp4"])

    entry = await journal.get("task_1", principal=LOCAL)

    assert entry is not None
    assert entry.video_urls == ["https://cdn.example.com/v.mp4"]
    assert entry.local_paths == ["/videos/task_1.mp4"]
    assert (entry.created_time, entry.finished_time) == ("2026-12-01 10:00:00", "2026-12-01 10:02:00")
    assert entry.to_snapshot().video_urls == finished.video_urls


async def test_an_unknown_outcome_is_kept_and_a_refused_submit_forgotten(journal: TaskStore) -> None:
    unknown = await journal.record_submission(VEO, {"model": VEO}, principal=LOCAL)
    refused = await journal.record_submission(VEO, {"model": VEO}, principal=LOCAL)
    await journal.record_unknown_outcome(unknown)
    await journal.discard(refused)

    kept = await journal.get(unknown, principal=LOCAL)
    listed = await journal.recent(principal=LOCAL, status="submit_outcome_unknown")

    assert kept is not None
    assert (kept.submit_state, kept.status) == ("unknown", "submit_outcome_unknown")
    assert await journal.get(refused, principal=LOCAL) is None
    assert [entry.entry_id for entry in listed] == [unknown]


async def test_a_submit_cut_off_by_a_crash_is_read_back_as_unknown(location: str) -> None:
    first = task_store_for(location)
    entry_id = await first.record_submission(VEO, {"model": VEO}, principal=LOCAL)
    await first.close()  # the process "dies" with the request in flight

    second = task_store_for(location)
    entry = await second.get(entry_id, principal=LOCAL)
    await second.close()

    assert entry is not None
    assert entry.submit_state == "unknown"
    assert entry.status == "submit_outcome_unknown"


async def test_recent_is_newest_first_filtered_and_limited(journal: TaskStore) -> None:
    for number in range(5):
        entry_id = await journal.record_submission(VEO, {}, principal=LOCAL)
        await journal.record_accepted(
            entry_id, snapshot(f"task_{number}", "finished" if number % 2 else "running")
        )

    newest = await journal.recent(principal=LOCAL, limit=3)
    finished = await journal.recent(principal=LOCAL, status="finished")

    assert [entry.task_id for entry in newest] == ["task_4", "task_3", "task_2"]
    assert [entry.task_id for entry in finished] == ["task_3", "task_1"]


async def test_many_writers_at_once_record_one_entry_and_every_change_once(location: str) -> None:
    """Instances sharing a store: each sees the same new task and writes the same statuses."""
    stores = [task_store_for(location) for _ in range(3)]
    try:
        for status in [("running", 10), ("running", 40), ("finished", 100)]:
            async with anyio.create_task_group() as group:
                for store in stores:
                    group.start_soon(
                        partial(store.record_status, principal=LOCAL), snapshot("task_shared", *status)
                    )
        listed = await stores[0].recent(principal=LOCAL)
        entry = await stores[1].get("task_shared", principal=LOCAL, with_events=True)
    finally:
        for store in stores:
            await store.close()

    assert [listed_entry.task_id for listed_entry in listed] == ["task_shared"]
    assert entry is not None
    assert [(event.status, event.progress) for event in entry.events] == [
        ("running", 10),
        ("running", 40),
        ("finished", 100),
    ]


async def test_each_principal_reads_only_its_own_entries(journal: TaskStore) -> None:
    alices = await journal.record_submission(VEO, {"model": VEO}, principal="key:alice")
    await journal.record_accepted(alices, snapshot("task_alice", "running"))
    await journal.record_status(snapshot("task_bob", "running"), principal="key:bob")
    # A status seen later by someone else leaves the owner as it was.
    await journal.record_status(snapshot("task_alice", "finished", 100), principal="key:bob")

    assert [entry.task_id for entry in await journal.recent(principal="key:alice")] == ["task_alice"]
    assert [entry.task_id for entry in await journal.recent(principal="key:bob")] == ["task_bob"]
    assert await journal.recent(principal=LOCAL) == []
    assert await journal.get("task_alice", principal="key:bob") is None
    assert await journal.get(alices, principal="key:bob") is None
    mine = await journal.get("task_alice", principal="key:alice")
    assert mine is not None
    assert (mine.principal, mine.status) == ("key:alice", "finished")
    assert await journal.owner("task_alice") == "key:alice"
    assert await journal.owner(alices) == "key:alice"
    assert await journal.owner("task_nobody") is None


async def test_submissions_since_counts_only_the_principals_own_submits(journal: TaskStore) -> None:
    first = await journal.record_submission(VEO, {"model": VEO}, principal="key:alice")
    await journal.record_accepted(first, snapshot("task_1", "running"))
    await journal.record_submission(VEO, {"model": VEO}, principal="key:alice")
    await journal.record_submission(VEO, {"model": VEO}, principal="key:bob")
    await journal.record_status(snapshot("task_adopted", "running"), principal="key:alice")  # no request

    everything = await journal.submissions_since(principal="key:alice", since="2000-01-01T00:00:00+00:00")
    nothing = await journal.submissions_since(principal="key:alice", since="2999-01-01T00:00:00+00:00")

    assert everything[0].entry_id == first, "oldest first"
    assert len(everything) == 2
    assert nothing == []
