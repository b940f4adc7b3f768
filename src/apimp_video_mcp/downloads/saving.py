"""Saving a finished task's videos in the background, bounded in time, files and bytes.

A wait must end by its deadline whatever the result host does: a body trickling one byte every
few seconds never trips a read timeout, and a task may list any number of files. So saving is
a job of the service, not of the call that asked for it:

- A task has at most one save job at a time, run in the service's task group. Every caller
  waiting on the task shares it; a caller whose deadline passes leaves it running and is told
  the video is still being saved; the job ends with the server, its partial file removed.
- A job has its own overall deadline (APIMP_DOWNLOAD_TIMEOUT) and saves at most
  APIMP_DOWNLOAD_MAX_FILES files, of at most APIMP_DOWNLOAD_MAX_TASK_BYTES together.
- The job writes what it saved to the journal itself, so a save that outlives its caller is
  still recorded. Once it ends it is forgotten: asking again keeps the files already saved
  (they are not fetched twice) and tries the rest again, since a failure may have passed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
from anyio.abc import TaskGroup

from apimp_video_mcp import defaults
from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.config import Settings
from apimp_video_mcp.downloads.files import SizeCap, describe_size, download_video, video_filename
from apimp_video_mcp.downloads.network import build_download_client
from apimp_video_mcp.errors import DownloadError, DownloadFailure
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.pollers import Clock, at_most
from apimp_video_mcp.results import SavedVideo
from apimp_video_mcp.store import TaskStore

logger = logging.getLogger(__name__)


@dataclass
class SaveOutcome:
    """What a caller learns in time: the files saved so far, why saving stopped, or that it goes on."""

    saved: list[SavedVideo] = field(default_factory=list)
    error: str | None = None
    in_progress: bool = False
    failure: DownloadFailure | None = None  # why saving stopped, for code that acts on it


@dataclass
class _SaveJob:
    saved: list[SavedVideo] = field(default_factory=list)
    error: str | None = None
    failure: DownloadFailure | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


class VideoSaver:
    """The save jobs of the process; run it for the server's lifetime with `async with saver.running()`."""

    def __init__(self, settings: Settings, journal: TaskStore, *, clock: Clock) -> None:
        self.settings = settings
        self._journal = journal
        self._clock = clock
        self._jobs: dict[str, _SaveJob] = {}
        self._group: TaskGroup | None = None
        self._http: httpx2.AsyncClient | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[VideoSaver]:
        try:
            async with background_tasks() as group:  # downloads end with the server
                self._group = group
                try:
                    yield self
                finally:
                    self._group = None
        finally:
            if self._http is not None:
                with anyio.CancelScope(shield=True):
                    await self._http.aclose()
                self._http = None

    async def save(self, snapshot: TaskSnapshot, folder: Path, *, within_seconds: float) -> SaveOutcome:
        """Save the finished task's videos into `folder` (its principal's), waiting at most
        `within_seconds` (of the clock) for the job."""
        job = self._jobs.get(snapshot.task_id)
        if job is None:
            if self._group is None:
                raise RuntimeError("the video saver is not running")
            job = self._jobs[snapshot.task_id] = _SaveJob()
            self._group.start_soon(self._run, snapshot, folder, job)
        if within_seconds > 0 and not job.done.is_set():
            await at_most(self._clock, within_seconds, job.done.wait)
        return SaveOutcome(list(job.saved), job.error, in_progress=not job.done.is_set(), failure=job.failure)

    async def _run(self, snapshot: TaskSnapshot, folder: Path, job: _SaveJob) -> None:
        """One job, to its end; it never raises into the server's task group."""
        deadline = self.settings.download_timeout_seconds
        try:
            try:
                with anyio.move_on_after(deadline) as scope:
                    await self._save_all(snapshot, folder, job)
                if scope.cancelled_caught:
                    job.error = (
                        f"the download did not finish within {deadline:g} s (APIMP_DOWNLOAD_TIMEOUT), so it "
                        "was stopped and its partial file removed; the URL may still work, and waiting again "
                        "retries"
                    )
            except DownloadError as exc:
                job.error, job.failure = str(exc), exc.reason
            except Exception as exc:  # a bug or a full disk must not take the server down with it
                logger.exception("saving the videos of %s failed", snapshot.task_id)
                job.error = f"saving failed unexpectedly ({type(exc).__name__})"
            with anyio.CancelScope(shield=True):  # recorded before anyone is told the job ended
                await self._record(snapshot.task_id, job)
        finally:  # also when the server stops mid-download: then nothing is recorded
            if self._jobs.get(snapshot.task_id) is job:
                del self._jobs[snapshot.task_id]
            job.done.set()

    async def _record(self, task_id: str, job: _SaveJob) -> None:
        try:
            await self._journal.record_local_paths(task_id, [video.path for video in job.saved])
        except Exception:
            logger.exception("could not record the saved videos of %s in the journal", task_id)

    async def _save_all(self, snapshot: TaskSnapshot, folder: Path, job: _SaveJob) -> None:
        settings = self.settings
        urls = snapshot.video_urls
        budget = settings.download_max_task_bytes
        for index, url in enumerate(urls[: settings.download_max_files]):
            destination = folder / video_filename(snapshot.task_id, url, index)
            path = await download_video(
                self._client(),
                url,
                destination,
                cap=self._cap(budget),
                chunk_bytes=defaults.DOWNLOAD_CHUNK_BYTES,
            )
            size = (await anyio.Path(path).stat()).st_size
            budget -= size
            job.saved.append(SavedVideo(url=url, path=str(path), size_bytes=size))
        if len(urls) > settings.download_max_files:
            raise DownloadError(
                f"the task lists {len(urls)} videos; only the first {settings.download_max_files} were saved "
                "(APIMP_DOWNLOAD_MAX_FILES)"
            )

    def _cap(self, task_budget: int) -> SizeCap:
        """The tighter of the per-video cap and what is left of the task's."""
        settings = self.settings
        if settings.download_max_bytes <= task_budget:
            limit = f"the {describe_size(settings.download_max_bytes)} cap per video"
            return SizeCap(settings.download_max_bytes, limit, "APIMP_DOWNLOAD_MAX_BYTES")
        limit = f"the {describe_size(settings.download_max_task_bytes)} cap on a task's videos together"
        return SizeCap(max(task_budget, 0), limit, "APIMP_DOWNLOAD_MAX_TASK_BYTES")

    def _client(self) -> httpx2.AsyncClient:
        """Made on first use (loading the TLS trust store costs ~70 ms that start-up need not pay)."""
        if self._http is None:
            self._http = build_download_client(self.settings.download_allowed_hosts)
        return self._http
