"""The journal stays small: finished and failed tasks past the retention age are pruned.

A journal that only grows slows every listing and fills the disk of a server that runs for
years. Tasks that ended long ago are pruned with their events, once soon after the server starts
and then daily (or on demand with `apimp-video-mcp prune-journal`); their saved videos go too
only when the operator asks, and only files inside the download folder. Tasks still running and
submits whose outcome is unknown (receipts of money perhaps spent) are never pruned.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from apimp_video_mcp import defaults
from apimp_video_mcp.polling.pollers import Clock, ScaledClock
from apimp_video_mcp.store import TaskStore
from apimp_video_mcp.store.interface import describe_failure

logger = logging.getLogger(__name__)


class PruneReport(BaseModel):
    """What one prune removed."""

    older_than_days: float
    tasks: int = Field(description="Finished or failed tasks forgotten.")
    events: int = Field(description="Their recorded status changes, forgotten with them.")
    videos_deleted: int = Field(description="Their saved videos deleted (only when asked).")

    def summary(self) -> str:
        videos = f", {self.videos_deleted} saved video(s) deleted" if self.videos_deleted else ""
        return (
            f"Pruned {self.tasks} finished or failed task(s) older than {self.older_than_days:g} days "
            f"({self.events} status change(s){videos})."
        )


class JournalRetention:
    """Prunes one journal, on demand or periodically."""

    def __init__(
        self,
        journal: TaskStore,
        *,
        retention_days: float,
        delete_videos: bool,
        download_dir: Path,
        clock: Clock | None = None,
    ) -> None:
        self.journal = journal
        self.retention_days = retention_days
        self.delete_videos = delete_videos
        self.download_dir = download_dir
        self._clock = clock or ScaledClock()

    async def prune(
        self, *, older_than_days: float | None = None, delete_videos: bool | None = None
    ) -> PruneReport:
        """Forget ended tasks unchanged for `older_than_days` (default: the retention)."""
        days = self.retention_days if older_than_days is None else older_than_days
        pruned = await self.journal.prune(updated_before=datetime.now(UTC) - timedelta(days=days))
        deleting = self.delete_videos if delete_videos is None else delete_videos
        deleted = await self._delete_saved(pruned.local_paths) if deleting else 0
        report = PruneReport(
            older_than_days=days, tasks=pruned.tasks, events=pruned.events, videos_deleted=deleted
        )
        if report.tasks:
            logger.info("%s", report.summary())
        return report

    async def run_periodically(self) -> None:
        """Prune soon after start-up, then every day, until cancelled; 0 days of retention turns it off.

        The first prune waits a little, so that a host starting the server does not wait for it.
        """
        if self.retention_days <= 0:
            return
        await self._clock.sleep(defaults.JOURNAL_PRUNE_FIRST_DELAY_SECONDS)
        while True:
            try:
                await self.prune()
            except Exception as exc:  # a busy or broken journal must not stop the server
                logger.warning("pruning the task journal failed: %s", describe_failure(exc))
            await self._clock.sleep(defaults.JOURNAL_PRUNE_INTERVAL_SECONDS)

    async def _delete_saved(self, paths: list[str]) -> int:
        """Delete the saved videos that lie inside the download folder; a path elsewhere (a journal
        shared with another server, a hand-edited row) is never touched."""
        folder = await anyio.Path(self.download_dir).resolve()
        deleted = 0
        for path in paths:
            target = await anyio.Path(path).resolve()
            if not target.is_relative_to(folder) or target == folder:
                logger.warning("not deleting %s: it is outside the download folder", path)
                continue
            try:
                await target.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning("could not delete %s: %s", path, exc.strerror or exc)
                continue
            deleted += 1
        return deleted
