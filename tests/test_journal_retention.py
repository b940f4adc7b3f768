"""The journal stays small: ended tasks past the retention are pruned by the running server (and
by `apimp-video-mcp prune-journal`), their saved videos only when asked and only in the folder."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client

from apimp_video_mcp import cli
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.config import Settings
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.pollers import ScaledClock
from apimp_video_mcp.server import build_server
from apimp_video_mcp.store import PrunedTasks, SqliteTaskStore
from tests.support import Upstream, fast_settings, structured

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"


class ObservedStore(SqliteTaskStore):
    """The real store, telling the test when the server's first background prune is over: prunes
    run one after another, so the second one starting means the first (files included) is done."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.prunes = 0
        self.first_prune_done = anyio.Event()

    async def prune(self, *, updated_before: datetime) -> PrunedTasks:
        self.prunes += 1
        if self.prunes == 2:
            self.first_prune_done.set()
        return await super().prune(updated_before=updated_before)


async def journal_with_history(settings: Settings, outside: Path) -> None:
    """Two tasks that ended 100 days ago (one saved inside the download folder, one outside it),
    one that ended yesterday, one still running for 100 days, and a receipt 100 days old."""
    settings.download_dir.mkdir(parents=True)
    journal = await SqliteTaskStore.open(settings.journal_path)
    for task_id, status in [
        ("task_old", "finished"),
        ("task_old_failed", "failed"),
        ("task_recent", "finished"),
        ("task_stuck", "running"),
    ]:
        entry_id = await journal.record_submission(
            VEO, {"model": VEO, "input": {"prompt": task_id}}, principal=LOCAL
        )
        await journal.record_accepted(
            entry_id, TaskSnapshot.from_wire({"task_id": task_id, "status": status})
        )
    (settings.download_dir / "task_old.mp4").write_bytes(b"video")
    outside.write_bytes(b"not ours")
    await journal.record_local_paths("task_old", [str(settings.download_dir / "task_old.mp4")])
    await journal.record_local_paths("task_old_failed", [str(outside)])
    receipt = await journal.record_submission(VEO, {"model": VEO}, principal=LOCAL)
    await journal.record_unknown_outcome(receipt)
    await journal.close()
    long_ago = (datetime.now(UTC) - timedelta(days=100)).isoformat(timespec="milliseconds")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds")
    with sqlite3.connect(settings.journal_path) as db:
        db.execute("UPDATE tasks SET updated_at = ?", (long_ago,))
        db.execute("UPDATE tasks SET updated_at = ? WHERE task_id = 'task_recent'", (yesterday,))


@pytest.mark.parametrize("delete_videos", [False, True])
async def test_the_running_server_prunes_tasks_that_ended_before_the_retention(
    upstream: Upstream, tmp_path: Path, delete_videos: bool
) -> None:
    settings = fast_settings(
        upstream.base_url, tmp_path / "videos", journal_retention_days=90, journal_prune_videos=delete_videos
    )
    outside = tmp_path / "elsewhere.mp4"
    await journal_with_history(settings, outside)
    store = ObservedStore(settings.journal_path)
    # The first prune waits a minute after start-up, the next a day: a million times faster here.
    async with Client(build_server(settings, store=store, clock=ScaledClock(scale=1e6))) as client:
        with anyio.fail_after(10):
            await store.first_prune_done.wait()
        listed = structured(await client.call_tool("list_tasks", {"limit": 100}))["tasks"]

    assert sorted(entry["task_id"] or "receipt" for entry in listed) == [
        "receipt",
        "task_recent",
        "task_stuck",
    ]
    assert (settings.download_dir / "task_old.mp4").exists() is not delete_videos
    assert outside.exists()  # outside the download folder: never deleted
    with sqlite3.connect(settings.journal_path) as db:
        assert db.execute(
            "SELECT count(*) FROM task_events WHERE entry_id NOT IN (SELECT entry_id FROM tasks)"
        ).fetchone() == (0,)


def test_prune_journal_is_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fast_settings("http://127.0.0.1:9", tmp_path / "videos")
    anyio.run(journal_with_history, settings, tmp_path / "elsewhere.mp4")
    monkeypatch.setenv("APIMP_JOURNAL", settings.journal_path)
    monkeypatch.setenv("APIMP_DOWNLOAD_DIR", str(settings.download_dir))

    cli.main(["prune-journal", "--older-than-days", "30", "--delete-videos"])
    first = capsys.readouterr().out
    cli.main(["prune-journal", "--older-than-days", "0"])
    second = capsys.readouterr().out

    assert "Pruned 2 finished or failed task(s) older than 30 days" in first
    assert "1 saved video(s) deleted" in first
    assert not (settings.download_dir / "task_old.mp4").exists()
    assert "Pruned 1 finished or failed task(s) older than 0 days" in second  # task_recent
    with sqlite3.connect(settings.journal_path) as db:
        left = sorted(str(row[0]) for row in db.execute("SELECT task_id FROM tasks"))
    assert left == ["None", "task_stuck"]


def test_retention_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"APIMP_JOURNAL_RETENTION_DAYS": "30", "APIMP_JOURNAL_PRUNE_VIDEOS": "true"})
    default = Settings.from_env({})

    assert (settings.journal_retention_days, settings.journal_prune_videos) == (30, True)
    assert (default.journal_retention_days, default.journal_prune_videos) == (90, False)
