"""Schema migrations: numbered, applied once at open on both backends, and old journals adopted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.store import task_store_for
from apimp_video_mcp.store.migrations import LATEST_VERSION, MIGRATIONS, migrate_sqlite
from tests.store.test_task_store import snapshot

pytestmark = pytest.mark.anyio

# The schema every journal had before migrations existed (release 0.1.0), with one task in it.
PRE_MIGRATION_JOURNAL = """
CREATE TABLE tasks (
    entry_id TEXT PRIMARY KEY, task_id TEXT UNIQUE, model TEXT, request_json TEXT,
    submit_state TEXT NOT NULL, status TEXT NOT NULL, upstream_status TEXT, progress INTEGER,
    video_urls_json TEXT NOT NULL DEFAULT '[]', local_paths_json TEXT NOT NULL DEFAULT '[]',
    error_message TEXT, created_time TEXT, finished_time TEXT,
    recorded_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX tasks_by_recency ON tasks (recorded_at DESC);
CREATE TABLE task_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL REFERENCES tasks (entry_id) ON DELETE CASCADE,
    at TEXT NOT NULL, status TEXT NOT NULL, progress INTEGER
);
CREATE INDEX events_by_entry ON task_events (entry_id, id);
INSERT INTO tasks VALUES ('entry_old', 'task_old', 'veo-3.0-generate-001',
    '{"model": "veo-3.0-generate-001"}', 'accepted', 'finished', 'finished', 100,
    '["https://cdn.example.com/old.mp4"]', '[]', NULL,
    NULL, NULL, '2026-01-01T00:00:00.000+00:00', '2026-01-01T00:02:00.000+00:00');
INSERT INTO task_events (entry_id, at, status, progress)
    VALUES ('entry_old', '2026-01-01T00:02:00.000+00:00', 'finished', 100);
"""


def applied_versions(location: str) -> list[int]:
    if location.startswith("postgresql://"):
        with psycopg.connect(location) as conn:
            return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    with sqlite3.connect(location) as db:
        return [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_versions_count_up_from_one_and_each_does_something() -> None:
    assert [migration.version for migration in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    for migration in MIGRATIONS:
        assert migration.sqlite or migration.postgresql
        assert migration.description


async def test_a_new_journal_gets_every_version_once_however_often_it_is_opened(location: str) -> None:
    for _ in range(2):
        store = task_store_for(location)
        await store.recent(principal=LOCAL)
        await store.close()

    assert applied_versions(location) == list(range(1, LATEST_VERSION + 1))


async def test_a_journal_from_before_migrations_is_adopted_with_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(PRE_MIGRATION_JOURNAL)

    store = task_store_for(str(path))
    old = await store.get("task_old", principal=LOCAL, with_events=True)
    await store.record_status(snapshot("task_new", "running", 5), principal=LOCAL)
    new = await store.get("task_new", principal=LOCAL)
    await store.close()

    assert old is not None
    assert (old.status, old.video_urls, old.request) == (
        "finished",
        ["https://cdn.example.com/old.mp4"],
        {"model": "veo-3.0-generate-001"},
    )
    assert [(event.status, event.progress) for event in old.events] == [("finished", 100)]
    assert new is not None
    assert new.progress == 5
    assert applied_versions(str(path)) == list(range(1, LATEST_VERSION + 1))


async def test_a_journal_written_by_a_newer_release_is_refused_and_named(location: str) -> None:
    store = task_store_for(location)
    await store.recent(principal=LOCAL)
    await store.close()
    future = LATEST_VERSION + 1
    if location.startswith("postgresql://"):
        with psycopg.connect(location) as conn:
            conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, 'x')", (future,))
    else:
        with sqlite3.connect(location) as db:
            db.execute("INSERT INTO schema_migrations (version, description) VALUES (?, 'x')", (future,))

    reopened = task_store_for(location)
    with pytest.raises(ConfigurationError, match=rf"schema version {future}.*newer release"):
        await reopened.recent(principal=LOCAL)
    await reopened.close()


def test_a_failed_migration_leaves_the_journal_as_it_was(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.execute("CREATE TABLE tasks (entry_id TEXT)")  # a table of that name, but not ours
    db.commit()

    with pytest.raises(sqlite3.OperationalError):
        migrate_sqlite(db)

    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"tasks"}
