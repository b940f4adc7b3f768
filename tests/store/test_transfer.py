"""Moving a single server's SQLite journal into a cluster's PostgreSQL journal, by the CLI command."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID
from apimp_video_mcp.cli import main
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store import JournalEntry, SqliteTaskStore
from apimp_video_mcp.store.postgres import PostgresTaskStore

VEO = "veo-3.1-generate-preview"
ME = LOCAL_PRINCIPAL_ID


def snapshot(task_id: str, status: str, progress: int | None = None) -> TaskSnapshot:
    return TaskSnapshot.from_wire({"task_id": task_id, "status": status, "progress": progress})


async def a_journal_with_history(path: Path) -> list[JournalEntry]:
    """A finished task with its events and saved file, a running one, and an unknown outcome."""
    journal = await SqliteTaskStore.open(path)
    finished = await journal.record_submission(VEO, {"model": VEO, "input": {"prompt": "a"}}, principal=ME)
    await journal.record_accepted(finished, snapshot("task_done", "not_started"))
    await journal.record_status(snapshot("task_done", "running", 40), principal=ME)
    await journal.record_status(
        TaskSnapshot.from_wire(
            {
                "task_id": "task_done",
                "status": "finished",
                "progress": 100,
                "files": [{"file_url": "https://cdn.example.com/done.mp4", "file_type": "video"}],
            }
        ),
        principal=ME,
    )
    await journal.record_local_paths("task_done", ["/videos/task_done.mp4"])
    running = await journal.record_submission(VEO, {"model": VEO, "input": {"prompt": "b"}}, principal=ME)
    await journal.record_accepted(running, snapshot("task_running", "running", 10))
    unknown = await journal.record_submission(VEO, {"model": VEO, "input": {"prompt": "c"}}, principal=ME)
    await journal.record_unknown_outcome(unknown)
    entries = [
        entry
        for key in ("task_done", "task_running", unknown)
        if (entry := await journal.get(key, principal=ME, with_events=True)) is not None
    ]
    await journal.close()
    return entries


def test_every_task_arrives_whole_and_a_second_run_copies_nothing(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "journal.sqlite3"
    before = anyio.run(a_journal_with_history, source)

    main(["migrate-journal", "--from", str(source), "--to", postgres_url])
    first = capsys.readouterr().out
    main(["migrate-journal", "--from", str(source), "--to", postgres_url])
    second = capsys.readouterr().out

    after, listed = anyio.run(read_back, postgres_url, [entry.entry_id for entry in before])
    assert "copied 3 tasks and 4 status events" in first
    assert "copied 0 tasks" in second
    assert "3 tasks were already in the target" in second
    assert [entry.model_dump() if entry else None for entry in after] == [
        entry.model_dump() for entry in before
    ]
    assert [entry.entry_id for entry in listed] == [entry.entry_id for entry in reversed(before)]


async def read_back(url: str, entry_ids: list[str]) -> tuple[list[JournalEntry | None], list[JournalEntry]]:
    target = await PostgresTaskStore.open(url)
    try:
        entries = [await target.get(entry_id, principal=ME, with_events=True) for entry_id in entry_ids]
        return entries, await target.recent(principal=ME)
    finally:
        await target.close()


def test_the_command_refuses_a_target_that_is_not_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["migrate-journal", "--from", str(tmp_path / "journal.sqlite3"), "--to", str(tmp_path / "x")])

    assert exit_.value.code == 2
    assert "postgresql://" in capsys.readouterr().err


def test_the_command_refuses_a_missing_source(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["migrate-journal", "--from", str(tmp_path / "nothing.sqlite3"), "--to", postgres_url])

    assert exit_.value.code == 2
    assert "nothing.sqlite3" in capsys.readouterr().err
