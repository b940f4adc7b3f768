"""What the poll schedule learns from: the finished tasks of a model, held by both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.store import TaskStore, task_store_for

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"
FAST = "veo-3.1-fast-generate-preview"


@pytest.fixture
async def journal(location: str) -> AsyncIterator[TaskStore]:
    opened = task_store_for(location)
    yield opened
    await opened.close()


async def finished(journal: TaskStore, task_id: str, model: str, seconds: int, *, principal: str) -> None:
    request = {
        "model": model,
        "input": {"prompt": "a secret prompt", "image": "https://x/y.png", "size": "1280x720", "duration": 8},
    }
    entry_id = await journal.record_submission(model, request, principal=principal)
    created = "2026-12-01T10:00:00"
    await journal.record_accepted(
        entry_id,
        TaskSnapshot.from_wire({"task_id": task_id, "status": "not_started", "created_time": created}),
    )
    end = {"task_id": task_id, "status": "finished", "progress": 100, "created_time": created}
    end["finished_time"] = f"2026-12-01T10:{seconds // 60:02d}:{seconds % 60:02d}"
    await journal.record_status(TaskSnapshot.from_wire(end), principal=principal)


async def test_the_models_finished_tasks_of_every_principal_newest_first_without_prompt_or_images(
    journal: TaskStore,
) -> None:
    await finished(journal, "task_1", VEO, 70, principal="local")
    await finished(journal, "task_2", VEO, 95, principal="alice")
    await finished(journal, "task_3", FAST, 40, principal="local")
    running = await journal.record_submission(
        VEO, {"model": VEO, "input": {"prompt": "x"}}, principal="local"
    )
    await journal.record_accepted(running, TaskSnapshot.from_wire({"task_id": "task_4", "status": "running"}))

    generations = await journal.finished_generations(VEO, limit=10)

    assert [g.finished_time for g in generations] == ["2026-12-01T10:01:35", "2026-12-01T10:01:10"]
    assert all(g.created_time == "2026-12-01T10:00:00" for g in generations)
    assert all(g.request == {"model": VEO, "input": {"size": "1280x720", "duration": 8}} for g in generations)
    assert len(await journal.finished_generations(VEO, limit=1)) == 1
