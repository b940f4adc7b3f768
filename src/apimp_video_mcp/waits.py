"""Waiting for a video: follow its task until it ends or the deadline passes, then save it.

A wait is where a call meets time, so its rules live here together: it never outlasts its
timeout (saving the video gets what is left of it, and goes on in the background beyond it);
it sends no request for a task the journal knows has ended; its pollers are shared with every
other waiter on the task and pace themselves by how long such a task usually takes, learned
from the journal; and when APIMP goes quiet it answers with the journal's last word and says
since when. Every answer ends with the model's next step (`next_step_for`, shared with
`get_status`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.downloads.saving import SaveOutcome, VideoSaver
from apimp_video_mcp.errors import UpstreamUnreachableError
from apimp_video_mcp.lookups import TaskLookups, reading_the_journal
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.durations import generation_format, learned_typical_duration, typical_duration
from apimp_video_mcp.polling.pollers import PollerHub, ReportProgress, WaitOutcome, wait_for_task
from apimp_video_mcp.results import TaskReport, WaitResult
from apimp_video_mcp.store import JournalEntry, TaskStore
from apimp_video_mcp.store.interface import describe_failure

logger = logging.getLogger(__name__)

STILL_SAVING = (
    "The video is ready and still being saved on the server: the download goes on in the background. "
    "Call wait_for_video again with this task_id to get the saved file's path (the video URL works "
    "meanwhile)."
)


async def no_progress(progress: float, message: str) -> None:
    """The progress sink used when nobody listens."""


class Waiter:
    """The wait path of `VideoService` (see the module's docstring): the pollers follow a task,
    the saver saves its videos, and the journal fills in what APIMP does not say."""

    def __init__(
        self,
        settings: Settings,
        journal: TaskStore,
        lookups: TaskLookups,
        pollers: PollerHub,
        saver: VideoSaver,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.lookups = lookups
        self.pollers = pollers
        self.saver = saver
        # Typical durations learned from the journal, by model and format: (clock time, seconds).
        self._typical_cache: dict[tuple[str | None, tuple[str | None, int | None]], tuple[float, float]] = {}

    async def wait(
        self,
        task_id: str,
        *,
        timeout_seconds: float | None = None,
        download: bool = True,
        report: ReportProgress = no_progress,
        principal: Principal = LOCAL_PRINCIPAL,
    ) -> WaitResult:
        """Wait for the task until it ends or the timeout passes; save its videos when asked."""
        timeout = timeout_seconds or self.settings.wait_timeout_seconds
        entry = await self.lookups.entry_with_a_task(task_id, principal)
        if entry is not None and entry.is_terminal:  # nothing left to wait for: no request needed
            outcome = WaitOutcome(entry.to_snapshot(), timed_out=False, waited_seconds=0.0)
            await report(100.0, f"{entry.status} (from the task journal)")
        else:
            self.lookups.follow_as(task_id, principal)
            outcome = await wait_for_task(
                self.pollers,
                task_id,
                timeout_seconds=timeout,
                report=report,
                heartbeat_seconds=self.settings.progress_interval_seconds,
                model=entry.model if entry is not None else None,
                typical_seconds=await self._typical_seconds(entry),
            )
        snapshot = outcome.snapshot
        source: Literal["apimp", "journal"] = "apimp"
        if snapshot is None:  # APIMP never answered in time: the journal's last word, or nothing
            snapshot, source = await self._last_known(task_id, outcome, principal), "journal"
        saving = SaveOutcome()
        if download and snapshot.status == "finished":  # saved within what is left of the deadline
            folder = principal.download_dir(self.settings.download_dir)
            saving = await self.saver.save(snapshot, folder, within_seconds=timeout - outcome.waited_seconds)
        next_step = (
            STILL_SAVING
            if saving.in_progress
            else next_step_for(snapshot.status, timed_out=outcome.timed_out)
        )
        unreachable_since = None
        if outcome.unreachable_for_seconds is not None and outcome.timed_out:
            unreachable_since = _utc_seconds_ago(outcome.unreachable_for_seconds)
            next_step = f"{_unreachable_note(outcome, unreachable_since)} {next_step}"
        elif outcome.last_error is not None and outcome.timed_out:
            next_step = f"The last status check failed ({outcome.last_error}). {next_step}"
        report_ = TaskReport.from_snapshot(snapshot, next_step, source=source)
        return WaitResult(
            **report_.model_dump(),
            done=snapshot.is_terminal,
            timed_out=outcome.timed_out,
            waited_seconds=round(outcome.waited_seconds, 3),
            saved_videos=saving.saved,
            download_error=saving.error,
            saving_in_background=saving.in_progress,
            upstream_unreachable_since=unreachable_since,
            last_error=outcome.last_error,
        )

    async def _typical_seconds(self, entry: JournalEntry | None) -> float:
        """How long the task should take, learned from the journal's history (cached a while)."""
        model, request = (entry.model, entry.request) if entry is not None else (None, None)
        key = (model, generation_format(request))
        now = self.pollers.clock.now()
        cached = self._typical_cache.get(key)
        if cached is None or now - cached[0] > defaults.TYPICAL_DURATION_CACHE_SECONDS:
            try:
                learned = (await learned_typical_duration(self.journal, model, request)).seconds
            except Exception as exc:  # a journal that cannot answer only costs the learning
                logger.warning("typical durations not learned: %s", describe_failure(exc))
                learned = typical_duration(model).seconds
            cached = self._typical_cache[key] = (now, learned)
        return cached[1]

    async def _last_known(self, task_id: str, outcome: WaitOutcome, principal: Principal) -> TaskSnapshot:
        """The journal's last status of a task APIMP did not answer about; unreachable if it has none."""
        with reading_the_journal(f"find the last status of task {task_id}"):
            entry = await self.journal.get(task_id, principal=principal.id)
        if entry is not None and entry.task_id is not None and entry.submit_state == "accepted":
            return entry.to_snapshot()
        last_error = f" The last error: {outcome.last_error}." if outcome.last_error else ""
        raise UpstreamUnreachableError(
            f"APIMP is unreachable: it gave no answer about task {task_id} within "
            f"{outcome.waited_seconds:.0f} s, and this server has no record of the task.{last_error} "
            "Nothing was submitted or charged by this call; calling wait_for_video again later is safe."
        )


def _utc_seconds_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _unreachable_note(outcome: WaitOutcome, since: str) -> str:
    last_error = f"; the last error: {outcome.last_error}" if outcome.last_error else ""
    seconds = outcome.unreachable_for_seconds or 0.0
    return (
        f"APIMP has been unreachable since {since} ({seconds:.0f} s{last_error}). "
        "The status shown is the last one known. The task itself is unaffected: calling "
        "wait_for_video again is safe and never resubmits or pays twice."
    )


def next_step_for(status: str, *, timed_out: bool) -> str:
    """What the model should do next about a task in this status: mostly, wait for it."""
    if status == "finished":
        return (
            "The video is ready. Result URLs may expire: keep the saved file (wait_for_video saves it "
            "when download is on) or download the URL soon."
        )
    if status == "failed":
        return "The task failed and will not produce a video. Adjust the request and submit a new task."
    if timed_out:
        return (
            "The wait timed out; the task is still running (this is not a failure). Call "
            "wait_for_video again with the same task_id to keep waiting."
        )
    return "Still in progress. Call wait_for_video with this task_id to wait for the result."
