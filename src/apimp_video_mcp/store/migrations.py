"""Versioned schema migrations, one list for both backends, applied when a store opens.

A journal outlives the server version that created it, so its schema is numbered: the table
`schema_migrations` holds one row per version applied, and opening a store applies, in one
transaction, every migration it lacks. Each migration carries its SQLite and its PostgreSQL
statements side by side, so both backends move in step and a reviewer sees both at once.

To change the schema, append a `Migration` with the next version number; never edit one that
has been released. A step one backend does not need leaves its side empty (and says why), so the
numbers stay the same on both. Version 1 is the schema journals had before migrations existed, written with
`IF NOT EXISTS`, so an existing journal adopts it unchanged and is then recorded as version 1.

Several servers may open one journal at once (processes sharing an SQLite file, instances of a
cluster on one database): SQLite's write lock (`BEGIN IMMEDIATE`) and a PostgreSQL advisory lock
make them take turns, and each re-reads the version once it holds the lock.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from apimp_video_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from psycopg import AsyncConnection


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, and its statements for each backend."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="tasks and their status events",
        sqlite=(
            """CREATE TABLE IF NOT EXISTS tasks (
                entry_id TEXT PRIMARY KEY,
                task_id TEXT UNIQUE,
                model TEXT,
                request_json TEXT,
                submit_state TEXT NOT NULL,
                status TEXT NOT NULL,
                upstream_status TEXT,
                progress INTEGER,
                video_urls_json TEXT NOT NULL DEFAULT '[]',
                local_paths_json TEXT NOT NULL DEFAULT '[]',
                error_message TEXT,
                created_time TEXT,
                finished_time TEXT,
                recorded_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS tasks_by_recency ON tasks (recorded_at DESC)",
            """CREATE TABLE IF NOT EXISTS task_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                entry_id TEXT NOT NULL REFERENCES tasks (entry_id) ON DELETE CASCADE,
                at TEXT NOT NULL,
                status TEXT NOT NULL,
                progress INTEGER
            )""",
            "CREATE INDEX IF NOT EXISTS events_by_entry ON task_events (entry_id, id)",
        ),
        postgresql=(
            # `seq` orders entries recorded in the same instant (SQLite has its rowid for that).
            """CREATE TABLE tasks (
                entry_id TEXT PRIMARY KEY,
                seq BIGINT GENERATED ALWAYS AS IDENTITY,
                task_id TEXT UNIQUE,
                model TEXT,
                request JSONB,
                submit_state TEXT NOT NULL,
                status TEXT NOT NULL,
                upstream_status TEXT,
                progress INTEGER,
                video_urls JSONB NOT NULL DEFAULT '[]',
                local_paths JSONB NOT NULL DEFAULT '[]',
                error_message TEXT,
                created_time TEXT,
                finished_time TEXT,
                recorded_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )""",
            "CREATE INDEX tasks_by_recency ON tasks (recorded_at DESC, seq DESC)",
            """CREATE TABLE task_events (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                entry_id TEXT NOT NULL REFERENCES tasks (entry_id) ON DELETE CASCADE,
                at TIMESTAMPTZ NOT NULL,
                status TEXT NOT NULL,
                progress INTEGER
            )""",
            "CREATE INDEX events_by_entry ON task_events (entry_id, id)",
        ),
    ),
    Migration(
        version=2,
        description="polling leases: one poller per task across the instances of a cluster",
        # PostgreSQL only: an SQLite journal serves the processes of one machine, each polling alone.
        sqlite=(),
        postgresql=(
            """CREATE TABLE task_polls (
                task_id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                lease_until TIMESTAMPTZ NOT NULL
            )""",
            "CREATE INDEX task_polls_by_owner ON task_polls (owner)",
        ),
    ),
    Migration(
        version=3,
        description="every task belongs to a principal; the tasks before them were the local user's",
        sqlite=(
            "ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT 'local'",
            "CREATE INDEX tasks_by_principal ON tasks (principal, recorded_at DESC)",
        ),
        postgresql=(
            "ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT 'local'",
            "CREATE INDEX tasks_by_principal ON tasks (principal, recorded_at DESC, seq DESC)",
        ),
    ),
    Migration(
        version=4,
        description="each submit's estimated cost, summed for the daily and monthly budgets",
        sqlite=(
            "ALTER TABLE tasks ADD COLUMN estimated_cost REAL",
            "ALTER TABLE tasks ADD COLUMN cost_currency TEXT",
        ),
        postgresql=(
            "ALTER TABLE tasks ADD COLUMN estimated_cost DOUBLE PRECISION",
            "ALTER TABLE tasks ADD COLUMN cost_currency TEXT",
        ),
    ),
    Migration(
        version=5,
        description="an index for listing one status of a principal, newest first",
        # SQLite walks the index backwards for "newest first", its rowid tiebreak included.
        sqlite=("CREATE INDEX tasks_by_status ON tasks (principal, status, recorded_at)",),
        postgresql=("CREATE INDEX tasks_by_status ON tasks (principal, status, recorded_at DESC, seq DESC)",),
    ),
)

LATEST_VERSION: Final = MIGRATIONS[-1].version

_SQLITE_LEDGER: Final = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""
_POSTGRESQL_LEDGER: Final = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
# Any constant will do, as long as it is this project's: it names the lock every instance takes
# while it migrates (the digits spell "apimp" on a phone keypad).
_POSTGRESQL_LOCK_KEY: Final = 27467


def pending(current_version: int) -> tuple[Migration, ...]:
    """The migrations a journal at `current_version` lacks; refuses a journal from the future."""
    if current_version > LATEST_VERSION:
        raise ConfigurationError(
            f"The task journal has schema version {current_version}, but this apimp-video-mcp knows "
            f"versions up to {LATEST_VERSION}: it was written by a newer release. Upgrade "
            "apimp-video-mcp, or point APIMP_JOURNAL at another journal."
        )
    return tuple(migration for migration in MIGRATIONS if migration.version > current_version)


def migrate_sqlite(db: sqlite3.Connection) -> int:
    """Bring an SQLite journal to the latest version; returns how many migrations ran."""
    db.execute("BEGIN IMMEDIATE")  # the write lock: one process migrates, the others then see it done
    try:
        db.execute(_SQLITE_LEDGER)
        (current,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        steps = pending(current)
        for migration in steps:
            for statement in migration.sqlite:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                (migration.version, migration.description),
            )
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return len(steps)


async def migrate_postgresql(conn: AsyncConnection[Any]) -> int:
    """Bring a PostgreSQL journal to the latest version; returns how many migrations ran."""
    from psycopg.rows import tuple_row  # psycopg only when PostgreSQL is used

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_POSTGRESQL_LOCK_KEY,))
        await conn.execute(_POSTGRESQL_LEDGER)
        cursor = conn.cursor(row_factory=tuple_row)  # whatever rows the caller's connection makes
        await cursor.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        row = await cursor.fetchone()
        assert row is not None
        steps = pending(int(row[0]))
        for migration in steps:
            for statement in migration.postgresql:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
    return len(steps)
