"""The poll schedule's typical duration is learned from the journal, per model and per format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apimp_video_mcp.catalog import generation_time
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.durations import generation_format, learned_typical_duration
from apimp_video_mcp.store import SqliteTaskStore

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"


def body(**input_: Any) -> dict[str, Any]:
    return {"model": VEO, "input": {"prompt": "a lighthouse", **input_}}


async def finished(journal: SqliteTaskStore, task_id: str, seconds: int, request: dict[str, Any]) -> None:
    entry_id = await journal.record_submission(VEO, request, principal="local")
    created = "2026-12-01T10:00:00"
    await journal.record_accepted(
        entry_id, TaskSnapshot.from_wire({"task_id": task_id, "status": "running", "created_time": created})
    )
    end = f"2026-12-01T10:{seconds // 60:02d}:{seconds % 60:02d}"
    await journal.record_status(
        TaskSnapshot.from_wire(
            {"task_id": task_id, "status": "finished", "created_time": created, "finished_time": end}
        ),
        principal="local",
    )


def test_the_format_is_what_the_request_asks_for_by_the_documented_rules() -> None:
    assert generation_format(body(size="1280x720", duration=8)) == ("720p", 8)
    assert generation_format(body(size="1280x720", metadata={"resolution": "4K", "durationSeconds": 4})) == (
        "4k",
        4,
    )
    assert generation_format(body()) == (None, None)
    assert generation_format(None) == (None, None)


async def test_no_history_means_the_catalogs_assumption(tmp_path: Path) -> None:
    journal = SqliteTaskStore(tmp_path / "journal.sqlite3")
    try:
        typical = await learned_typical_duration(journal, VEO, body())
    finally:
        await journal.close()

    assert not typical.learned
    assert typical.seconds == generation_time(VEO).typical_seconds


async def test_history_of_the_same_format_wins_and_the_models_history_serves_otherwise(
    tmp_path: Path,
) -> None:
    journal = SqliteTaskStore(tmp_path / "journal.sqlite3")
    try:
        for index, seconds in enumerate([200, 220, 240]):
            await finished(journal, f"task_4k_{index}", seconds, body(metadata={"resolution": "4k"}))
        for index, seconds in enumerate([50, 60, 70, 80]):
            await finished(journal, f"task_720_{index}", seconds, body(size="1280x720"))

        four_k = await learned_typical_duration(journal, VEO, body(metadata={"resolution": "4k"}))
        small = await learned_typical_duration(journal, VEO, body(size="1280x720"))
        other = await learned_typical_duration(journal, VEO, body(size="1920x1920"))  # 1080p: no history
    finally:
        await journal.close()

    assert (four_k.seconds, four_k.samples) == (220.0, 3)
    assert (small.seconds, small.samples) == (65.0, 4)
    assert (other.seconds, other.samples) == (80.0, 7)  # the model's whole history
