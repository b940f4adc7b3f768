"""What the live player view asks of the server: a quick status, where media may come from, the bytes.

The view (MCP Apps, see `wiring`) runs inside the host's sandboxed iframe and can only reach this
server through the host, one short call at a time. So every answer here is cheap and bounded:

- `status` makes at most one APIMP status query (none when another poller, such as a running
  wait_for_video, wrote the journal a moment ago, or when the task has ended) and never waits
  long for it: a slow or failing APIMP yields the last known status with `last_error` set, so the
  view keeps drawing and simply asks again. It also tells the view when to ask next, backing off
  while nothing changes.
- `media_origins` lists the origins the view's Content-Security-Policy must allow for the result
  videos to play directly: the configured ones, APIMP's own, and those seen in earlier results.
- `video_bytes` serves a finished video from the local copy (saving it first if needed), capped,
  for hosts whose CSP refuses the result URL.

Each is asked for one principal (the caller's) and sees only that principal's tasks, exactly as
the service's tools do.

Like the service, nothing here knows MCP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import anyio
from pydantic import BaseModel, Field

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import Spending
from apimp_video_mcp.downloads.files import SIGNATURE_BYTES, is_video_file, sniff_video_type
from apimp_video_mcp.errors import (
    TRANSIENT_ERRORS,
    SubmitOutcomeUnknownError,
    UnknownTaskError,
    UpstreamUnreachableError,
    VideoUnavailableError,
)
from apimp_video_mcp.models import TERMINAL_STATUSES, TaskStatus
from apimp_video_mcp.polling.durations import (
    earlier_generation_seconds,
    generation_seconds,
    parse_time,
    typical_duration,
)
from apimp_video_mcp.results import SavedCopy, status_headline
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.store import JournalEntry

logger = logging.getLogger(__name__)

VIDEO_RESOURCE_PREFIX: Final = "apimp://videos/"

Now = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Estimate(BaseModel):
    """How long the task should still take, from this server's own history of the same model."""

    typical_seconds: float = Field(description="Median generation time of this model's earlier tasks.")
    samples: int = Field(description="How many earlier tasks the median is taken over.")
    remaining_seconds: float = Field(
        description="The typical time minus the time elapsed; 0 once the task runs longer than usual."
    )


class PlayerStatus(BaseModel):
    """A task as the player view draws it: the status, what to show beside it, and when to ask again."""

    task_id: str
    status: TaskStatus = Field(description="not_started, running, finished or failed.")
    upstream_status: str | None = Field(description="The status exactly as APIMP reported it.")
    progress: int | None = Field(description="Percent complete as APIMP reports it (0-100), if it does.")
    model: str | None = Field(description="The model, when this server submitted or saw the request.")
    prompt: str | None = Field(description="The prompt, when this server submitted the task.")
    video_urls: list[str] = Field(description="Result video URLs (finished tasks). They may expire.")
    error_message: str | None = Field(description="Why the task failed, in APIMP's words.")
    created_time: str | None
    finished_time: str | None
    elapsed_seconds: float = Field(description="Seconds since the task was submitted (or first seen).")
    elapsed_since: Literal["submitted", "first_seen"] = Field(
        description="submitted: this server sent the task; first_seen: it was submitted elsewhere."
    )
    took_seconds: float | None = Field(
        description="For an ended task: finished_time minus created_time, when APIMP gave both."
    )
    estimate: Estimate | None = Field(
        description="None when there is no basis for one (too few earlier tasks of this model)."
    )
    saved_videos: list[SavedCopy] = Field(description="Copies of the result saved on the server's machine.")
    video_resource: str | None = Field(
        description="The apimp://videos/{task_id} resource that serves the video's bytes, when it can."
    )
    video_resource_note: str | None = Field(description="Why video_resource is None for a finished task.")
    next_poll_seconds: float | None = Field(description="When to ask again; None once the task has ended.")
    last_error: str | None = Field(
        description="The status query failed this time; the rest is the last status known."
    )
    estimated_cost: float | None = Field(
        default=None, description="The task's estimated price, recorded when this server submitted it."
    )
    cost_display: str | None = Field(default=None, description="The estimate as a person reads it.")
    spending: Spending | None = Field(default=None, description="Estimated spend today and this month.")

    def summary(self) -> str:
        line = status_headline(self.task_id, self.status, self.progress, self.error_message, self.video_urls)
        if self.last_error:
            line += f" (The latest status check failed: {self.last_error})"
        return line


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, without credentials; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def next_poll_seconds(quiet_seconds: float, *, base_seconds: float, max_seconds: float) -> float:
    """Every `base_seconds` while the task moves; after a quiet spell, a fraction of its length.

    A task whose status and progress have not changed for a minute is asked every 15 s, not every
    2 s: a stalled queue costs the view a few calls, not hundreds. Never beyond `max_seconds`
    (nor below the base, should the base be set above the maximum).
    """
    backed_off = quiet_seconds * defaults.UI_POLL_BACKOFF_FRACTION
    return max(base_seconds, min(backed_off, max_seconds))


def estimate(durations: Sequence[float], elapsed_seconds: float) -> Estimate | None:
    """An honest estimate: from this server's own history of the model, or none at all.

    APIMP's progress is not linear (a quick jump, a long middle, a climb that stalls near the
    end), so extrapolating the percentage would mislead; the past durations of the same model
    are a basis a person can judge, and the view names it.
    """
    typical = typical_duration(None, durations)  # shown only when learned: no model assumption
    if not typical.learned:
        return None
    return Estimate(
        typical_seconds=round(typical.seconds, 1),
        samples=typical.samples,
        remaining_seconds=round(max(typical.seconds - elapsed_seconds, 0.0), 1),
    )


def _seconds_between(start: str, end: datetime) -> float:
    moment = parse_time(start)
    if moment is None:
        return 0.0
    if moment.tzinfo is None:  # the journal writes UTC; be lenient with a hand-edited file
        moment = moment.replace(tzinfo=UTC)
    return max((end - moment).total_seconds(), 0.0)


def _task_status(entry: JournalEntry | None) -> TaskStatus | None:
    """The entry's task status; None for a submit with no known task."""
    if entry is None or entry.task_id is None:
        return None
    status = entry.status
    if status == "submit_outcome_unknown":
        return None
    return status


def _prompt(request: dict[str, Any] | None) -> str | None:
    inputs = request.get("input") if request else None
    prompt = inputs.get("prompt") if isinstance(inputs, dict) else None
    return prompt if isinstance(prompt, str) else None


class PlayerService:
    """The player view's side of the server, over the running `VideoService`."""

    def __init__(
        self, service: VideoService, *, principal: Principal = LOCAL_PRINCIPAL, now: Now = _utc_now
    ) -> None:
        self.service = service
        self.principal = principal
        self.settings: Settings = service.settings
        self.journal = service.journal
        self._now = now

    async def status(self, task_id: str) -> PlayerStatus:
        """The task's status for the view: at most one APIMP query, bounded in time."""
        entry = await self.service.entry_for(task_id, self.principal)
        last_error = None
        if entry is None or not (entry.is_terminal or self._fresh(entry)):
            try:
                with anyio.fail_after(defaults.UI_STATUS_CALL_TIMEOUT_SECONDS):
                    # Shared with concurrent callers; writes through to the journal.
                    await self.service.shared_status(task_id, self.principal)
            except (*TRANSIENT_ERRORS, TimeoutError) as exc:
                if entry is None and isinstance(exc, TimeoutError):  # nothing to show instead
                    raise UpstreamUnreachableError(
                        f"APIMP did not answer about task {task_id} within "
                        f"{defaults.UI_STATUS_CALL_TIMEOUT_SECONDS:g} s; the task itself is unaffected."
                    ) from None
                if entry is None:
                    raise
                reason = (
                    str(exc)
                    if not isinstance(exc, TimeoutError)
                    else f"APIMP did not answer within {defaults.UI_STATUS_CALL_TIMEOUT_SECONDS:g} s"
                )
                last_error = (
                    f"{reason}. Shown: the last status known, recorded {entry.updated_at}; asking again "
                    "is safe."
                )
                logger.info("player status for %s fell back to the journal: %s", task_id, last_error)
        entry = await self.journal.get(task_id, principal=self.principal.id, with_events=True)
        status = _task_status(entry)
        if entry is None or status is None:
            raise SubmitOutcomeUnknownError(
                f"{task_id} is a submit whose outcome is unknown: it has no task to show (see list_tasks)."
            )
        return await self._describe(entry, status, last_error)

    async def media_origins(self) -> list[str]:
        """The origins result videos may come from: configured, APIMP's, and seen in recent results."""
        finished = await self.journal.recent(
            principal=self.principal.id, status="finished", limit=defaults.UI_SEEN_ORIGINS_RECENT_TASKS
        )
        seen = (origin_of(url) for entry in finished for url in entry.video_urls)
        return sorted({*configured_media_origins(self.settings), *(origin for origin in seen if origin)})

    async def video_bytes(self, task_id: str) -> bytes:
        """The finished video's bytes from its local copy, saved now if it was not yet."""
        try:
            entry = await self.service.entry_for(task_id, self.principal)
        except UnknownTaskError:  # another principal's task reads exactly like no task at all
            entry = None
        if entry is None or entry.task_id is None:
            raise VideoUnavailableError(task_id, "unknown_task", "this server has no record of the task")
        if entry.status != "finished":
            raise VideoUnavailableError(task_id, "not_finished", f"the task is {entry.status}, not finished")
        copies = await self._saved_copies(entry.local_paths)
        if not copies:
            copies = await self._save_now(task_id)
        copy = copies[0]
        if copy.size_bytes > self.settings.ui_video_max_bytes:
            raise VideoUnavailableError(task_id, "too_large", self._too_large_note(copy.size_bytes))
        data = await anyio.Path(copy.path).read_bytes()
        if sniff_video_type(data[:SIGNATURE_BYTES]) is None or len(data) > self.settings.ui_video_max_bytes:
            # replaced since it was checked: serve nothing rather than whatever is there now
            raise VideoUnavailableError(task_id, "download_failed", "the saved copy changed; ask again")
        return data

    def _fresh(self, entry: JournalEntry) -> bool:
        """Written by another poller (a wait in progress) within half a poll interval: good enough."""
        age = _seconds_between(entry.updated_at, self._now())
        return age < self.settings.ui_poll_interval_seconds / 2

    async def _save_now(self, task_id: str) -> list[SavedCopy]:
        """Ask APIMP once (signed URLs may have been renewed), then save the videos, for a bounded time."""
        snapshot = await self.service.fetch_status(task_id, self.principal)
        folder = self.principal.download_dir(self.settings.download_dir)
        outcome = await self.service.saver.save(
            snapshot, folder, within_seconds=defaults.UI_SAVE_CALL_TIMEOUT_SECONDS
        )
        if outcome.in_progress:
            raise VideoUnavailableError(
                task_id, "saving", "the video is still being saved on the server; ask again in a moment"
            )
        if not outcome.saved:
            error = outcome.error or "APIMP listed no video for the task"
            reason = "expired" if outcome.failure == "expired" else "download_failed"
            raise VideoUnavailableError(task_id, reason, error)
        return [SavedCopy(path=video.path, size_bytes=video.size_bytes) for video in outcome.saved]

    async def _saved_copies(self, paths: Sequence[str]) -> list[SavedCopy]:
        """The recorded copies still there and still videos (a file put in their place is no copy)."""
        copies = []
        for path in paths:
            try:
                size = (await anyio.Path(path).stat()).st_size
            except OSError:  # moved or deleted since: not a copy any more
                continue
            if await anyio.to_thread.run_sync(is_video_file, Path(path)):
                copies.append(SavedCopy(path=path, size_bytes=size))
        return copies

    async def _describe(
        self, entry: JournalEntry, status: TaskStatus, last_error: str | None
    ) -> PlayerStatus:
        assert entry.task_id is not None
        now = self._now()
        elapsed = _seconds_between(entry.recorded_at, now)
        terminal = status in TERMINAL_STATUSES
        copies = await self._saved_copies(entry.local_paths) if status == "finished" else []
        resource, note = None, None
        if status == "finished" and entry.video_urls:
            if copies and copies[0].size_bytes > self.settings.ui_video_max_bytes:
                note = self._too_large_note(copies[0].size_bytes)
            else:
                resource = f"{VIDEO_RESOURCE_PREFIX}{entry.task_id}"
        quiet = _seconds_between(entry.events[-1].at if entry.events else entry.recorded_at, now)
        return PlayerStatus(
            task_id=entry.task_id,
            status=status,
            upstream_status=entry.upstream_status,
            progress=entry.progress,
            model=entry.model,
            prompt=_prompt(entry.request),
            video_urls=entry.video_urls,
            error_message=entry.error_message,
            created_time=entry.created_time,
            finished_time=entry.finished_time,
            elapsed_seconds=round(elapsed, 1),
            elapsed_since="submitted" if entry.request is not None else "first_seen",
            took_seconds=generation_seconds(entry) if terminal else None,
            estimate=None
            if terminal
            else estimate(
                await earlier_generation_seconds(self.journal, entry.model, principal=self.principal.id),
                elapsed,
            ),
            saved_videos=copies,
            video_resource=resource,
            video_resource_note=note,
            next_poll_seconds=None
            if terminal
            else round(
                next_poll_seconds(
                    quiet,
                    base_seconds=self.settings.ui_poll_interval_seconds,
                    max_seconds=defaults.UI_POLL_MAX_INTERVAL_SECONDS,
                ),
                2,
            ),
            last_error=last_error,
            estimated_cost=entry.estimated_cost,
            cost_display=self._cost_display(entry),
            spending=await self.service.spending(self.principal),
        )

    def _cost_display(self, entry: JournalEntry) -> str | None:
        """'about 3.20 USD', in the table's format when the entry is in its currency."""
        if entry.estimated_cost is None or entry.cost_currency is None:
            return None
        table = self.settings.price_table
        if entry.cost_currency == table.currency:
            return f"about {table.format(entry.estimated_cost)}"
        return f"about {entry.estimated_cost:g} {entry.cost_currency}"

    def _too_large_note(self, size_bytes: int) -> str:
        cap = self.settings.ui_video_max_bytes // (1024 * 1024)
        return (
            f"the saved video is {size_bytes / (1024 * 1024):.0f} MiB, more than the {cap} MiB the view can "
            "receive through the host; open it in the browser or from the saved file"
        )


def configured_media_origins(settings: Settings) -> list[str]:
    """What is known before any result: APIMP_UI_MEDIA_DOMAINS and APIMP's own origin."""
    base = origin_of(settings.base_url)
    return sorted({*settings.ui_media_domains, *([base] if base else [])})
