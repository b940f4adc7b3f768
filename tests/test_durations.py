"""A model's typical duration: learned from the journal's history when there is enough, else assumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL
from apimp_video_mcp.catalog import MODEL_SPECS
from apimp_video_mcp.polling.durations import earlier_generation_seconds, generation_seconds, typical_duration
from apimp_video_mcp.store import JournalEntry, SqliteTaskStore


def test_without_enough_history_the_typical_duration_is_the_catalogs_assumption() -> None:
    too_few = [40.0] * (defaults.TYPICAL_DURATION_MIN_SAMPLES - 1)

    for model, spec in MODEL_SPECS.items():
        assumed = typical_duration(model, too_few)
        assert (assumed.seconds, assumed.samples, assumed.learned) == (
            spec.generation_time.typical_seconds,
            0,
            False,
        )
    assert (
        typical_duration("a-model-from-elsewhere").seconds == typical_duration("veo-3.0-generate-001").seconds
    )


def test_with_enough_history_the_typical_duration_is_its_median() -> None:
    learned = typical_duration("veo-3.1-fast-generate-preview", [30.0, 50.0, 45.0, 300.0])

    assert (learned.seconds, learned.samples, learned.learned) == (47.5, 4, True)


def _entry(created: str | None, finished: str | None) -> JournalEntry:
    return JournalEntry(
        entry_id="entry_1",
        task_id="task_1",
        model="veo-3.0-generate-001",
        request=None,
        submit_state="accepted",
        status="finished",
        upstream_status="finished",
        progress=100,
        video_urls=[],
        local_paths=[],
        error_message=None,
        created_time=created,
        finished_time=finished,
        recorded_at="2026-01-01T00:00:00.000+00:00",
        updated_at="2026-01-01T00:00:00.000+00:00",
    )


@pytest.mark.parametrize(
    ("created", "finished", "expected"),
    [
        ("2026-03-01T10:00:00", "2026-03-01T10:01:30", 90.0),  # APIMP's clock, whatever its zone
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:45+00:00", 45.0),
        ("2026-03-01T10:00:00", "2026-03-01T10:00:45+00:00", None),  # naive against aware: no basis
        ("2026-03-01T10:01:00", "2026-03-01T10:00:00", None),  # finished before created: nonsense
        (None, "2026-03-01T10:00:00", None),
        ("yesterday", "today", None),
    ],
)
def test_a_generation_time_comes_only_from_two_readable_times_on_apimps_clock(
    created: str | None, finished: str | None, expected: float | None
) -> None:
    assert generation_seconds(_entry(created, finished)) == expected


@pytest.mark.anyio
async def test_a_task_of_no_known_model_has_no_history(tmp_path: Path) -> None:
    journal = await SqliteTaskStore.open(tmp_path / "journal.sqlite3")
    try:
        assert await earlier_generation_seconds(journal, None, principal=LOCAL_PRINCIPAL.id) == []
    finally:
        await journal.close()
