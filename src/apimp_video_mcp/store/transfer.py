"""Copy an SQLite journal into a PostgreSQL one: how a single server grows into a cluster.

`apimp-video-mcp migrate-journal --to postgresql://...` runs it. Both journals are first brought
to the latest schema (the server would do the same when it opens them), then every task is
copied with its own ids, times, principal and status events, in one transaction: either the
whole journal arrives or none of it does. A task the target already has (by entry id or task
id) is left as it is there, so running the command twice copies nothing twice.

Columns are matched by name (SQLite's `*_json` text columns are PostgreSQL's JSONB columns), so
a column a later migration adds to both backends is carried without changing this module.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from apimp_video_mcp.store.postgres import PostgresTaskStore
from apimp_video_mcp.store.sqlite import SqliteTaskStore

# SQLite keeps JSON as text under these names; PostgreSQL as JSONB under the names without `_json`.
_JSON_SUFFIX: Final = "_json"


@dataclass(frozen=True)
class TransferReport:
    tasks_copied: int
    events_copied: int
    tasks_already_there: int

    def __str__(self) -> str:
        return (
            f"copied {self.tasks_copied} tasks and {self.events_copied} status events; "
            f"{self.tasks_already_there} tasks were already in the target and were left as they are"
        )


async def copy_sqlite_to_postgres(source: str, target: str) -> TransferReport:
    """Copy every task of the SQLite journal at `source` into the PostgreSQL journal at `target`."""
    sqlite_store = SqliteTaskStore(source)
    await sqlite_store.check()  # opens and migrates it
    await sqlite_store.close()
    postgres_store = PostgresTaskStore(target)
    await postgres_store.check()
    await postgres_store.close()

    with sqlite3.connect(source) as db:
        db.row_factory = sqlite3.Row
        tasks = [dict(row) for row in db.execute("SELECT * FROM tasks ORDER BY recorded_at, rowid")]
        events = [
            dict(row)
            for row in db.execute("SELECT entry_id, at, status, progress FROM task_events ORDER BY id")
        ]
    db.close()

    async with await psycopg.AsyncConnection.connect(target) as conn, conn.transaction():
        cursor = await conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'tasks' AND table_schema = current_schema()"
        )
        target_columns = {row[0] for row in await cursor.fetchall()}
        copied: set[str] = set()
        for task in tasks:
            row = _postgres_row(task, target_columns)
            names = list(row)
            query = sql.SQL(
                "INSERT INTO tasks ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING entry_id"
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(sql.Placeholder() * len(names)),
            )
            inserted = await (await conn.execute(query, list(row.values()))).fetchone()
            if inserted is not None:
                copied.add(task["entry_id"])
        copied_events = [event for event in events if event["entry_id"] in copied]
        async with conn.cursor() as insert:
            await insert.executemany(
                "INSERT INTO task_events (entry_id, at, status, progress) VALUES (%s, %s, %s, %s)",
                [(e["entry_id"], e["at"], e["status"], e["progress"]) for e in copied_events],
            )
    return TransferReport(len(copied), len(copied_events), len(tasks) - len(copied))


def _postgres_row(task: dict[str, Any], target_columns: set[str]) -> dict[str, Any]:
    """An SQLite row as PostgreSQL's columns: JSON text becomes JSONB; unknown columns are refused."""
    row: dict[str, Any] = {}
    for name, value in task.items():
        if name.endswith(_JSON_SUFFIX):
            name, value = name.removesuffix(_JSON_SUFFIX), None if value is None else Jsonb(json.loads(value))
        if name not in target_columns:
            raise ValueError(f"the PostgreSQL journal has no column {name!r} for the SQLite journal's data")
        row[name] = value
    return row
