"""What the tools answer: structured results with a short text an agent (or person) can read.

Each result says what happened and what to do next, because the agent reading it decides the
next call from this text alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from apimp_video_mcp.catalog import VideoModelId
from apimp_video_mcp.costs.budget import Spending
from apimp_video_mcp.costs.pricing import CostEstimate
from apimp_video_mcp.models import EffectiveFormat, TaskSnapshot, TaskStatus
from apimp_video_mcp.store import EntryStatus, JournalEntry, TaskSummary


def status_headline(
    task_id: str,
    status: TaskStatus,
    progress: int | None,
    error_message: str | None,
    video_urls: Sequence[str],
) -> str:
    """The first line of every report of a task's status, wherever it is shown."""
    if status == "finished":
        return f"Task {task_id} finished: {len(video_urls)} video(s)."
    if status == "failed":
        return f"Task {task_id} failed: {error_message or 'APIMP gave no reason'}."
    shown = f", {progress}%" if progress is not None else ""
    return f"Task {task_id} is {status.replace('_', ' ')}{shown}."


class UploadedImage(BaseModel):
    """A local image uploaded to APIMP, and the hosted URL that now stands for it."""

    source: str = Field(description="The local path or file:// URL, as given.")
    path: str = Field(description="The file's real absolute path on the machine running the server.")
    url: str = Field(description="The hosted URL: what APIMP receives (or can receive) as input.image.")
    expires_at: str | None = Field(
        description="When APIMP deletes the upload (ISO-8601, as APIMP sent it). Uploaded images live 72 h."
    )
    size_bytes: int
    mime_type: str = Field(description="image/png, image/jpeg, image/webp or image/gif.")


class SubmitResult(BaseModel):
    """A task APIMP accepted."""

    task_id: str = Field(description="Pass this to wait_for_video or get_status.")
    status: TaskStatus
    created_time: str | None = Field(description="When APIMP created the task (ISO-8601, as APIMP sent it).")
    model: VideoModelId
    effective_format: EffectiveFormat
    uploaded_images: list[UploadedImage] = Field(
        default_factory=list,
        description="Local images uploaded first; the submitted request carried their URLs instead.",
    )
    journal_warning: str | None = Field(
        default=None,
        description="Set when the task could not be recorded in the local task journal: keep the task_id.",
    )
    estimated_cost: CostEstimate = Field(description="What this task should cost: an estimate, not the bill.")
    spending: Spending = Field(description="Estimated spend today and this month, this task included.")
    next_step: str

    def summary(self) -> str:
        fmt = self.effective_format
        shape = ", ".join(
            part
            for part in (fmt.aspect_ratio, fmt.resolution, f"{fmt.duration_seconds} s")
            if part is not None
        )
        lines = [f"Submitted {self.model} task {self.task_id} ({self.status}); expected format: {shape}."]
        lines.append(describe_cost(self.estimated_cost))
        lines.append(self.spending.display)
        lines += [f"Note: {note}" for note in fmt.notes]
        lines += [f"Uploaded {image.source} as {image.url}." for image in self.uploaded_images]
        if self.journal_warning:
            lines.append(f"Warning: {self.journal_warning}")
        lines.append(self.next_step)
        return "\n".join(lines)


class TaskReport(BaseModel):
    """A task's status as the agent needs it."""

    task_id: str
    status: TaskStatus = Field(description="not_started, running, finished or failed.")
    upstream_status: str = Field(description="The status exactly as APIMP reported it.")
    progress: int | None = Field(description="Percent complete as APIMP reports it (0-100), if it does.")
    video_urls: list[str] = Field(
        description="Result video URLs (finished tasks). They may expire: download."
    )
    other_file_urls: list[str] = Field(description="Other result files, if any (e.g. thumbnails).")
    error_message: str | None = Field(description="Why the task failed, in APIMP's words.")
    created_time: str | None
    finished_time: str | None
    source: Literal["apimp", "journal"] = Field(
        description="Where this came from: a fresh APIMP query, or the journal for a task that has ended."
    )
    next_step: str

    @classmethod
    def from_entry(cls, entry: JournalEntry, next_step: str) -> TaskReport:
        """A report from the journal alone: only for tasks that have ended, whose state cannot change."""
        return cls.from_snapshot(entry.to_snapshot(), next_step, source="journal")

    @classmethod
    def from_snapshot(
        cls, snapshot: TaskSnapshot, next_step: str, *, source: Literal["apimp", "journal"] = "apimp"
    ) -> TaskReport:
        return cls(
            task_id=snapshot.task_id,
            status=snapshot.status,
            upstream_status=snapshot.upstream_status,
            progress=snapshot.progress,
            video_urls=snapshot.video_urls,
            other_file_urls=snapshot.other_file_urls,
            error_message=snapshot.error_message,
            created_time=snapshot.created_time,
            finished_time=snapshot.finished_time,
            source=source,
            next_step=next_step,
        )

    def headline(self) -> str:
        return status_headline(self.task_id, self.status, self.progress, self.error_message, self.video_urls)

    def summary(self) -> str:
        lines = [self.headline(), *(f"Video: {url}" for url in self.video_urls), self.next_step]
        return "\n".join(lines)


class SavedCopy(BaseModel):
    """A video saved on the server's machine."""

    path: str = Field(description="Absolute path of the saved file on the machine running the server.")
    size_bytes: int


class SavedVideo(SavedCopy):
    """A video saved on the server's machine, and the result URL it was saved from."""

    url: str


class WaitResult(TaskReport):
    """The outcome of waiting: the task's status, plus whether the wait ran out of time."""

    done: bool = Field(description="True when the task finished or failed.")
    timed_out: bool = Field(description="True when the wait ended first. Not a failure: wait again.")
    waited_seconds: float
    saved_videos: list[SavedVideo] = Field(description="Videos saved locally (when download was on).")
    download_error: str | None = Field(description="Why saving failed, if it did; the URLs still work.")
    upstream_unreachable_since: str | None = Field(
        default=None,
        description="Set when APIMP gave no answer during the end of this wait: since when (UTC). The "
        "status is then the last one known (see source); waiting again is safe and costs nothing.",
    )
    last_error: str | None = Field(default=None, description="The latest failed status check, if any.")
    saving_in_background: bool = Field(
        default=False,
        description="True when the wait's time ran out while the video was being saved: the download goes "
        "on, and calling wait_for_video again returns the saved file.",
    )

    def summary(self) -> str:
        lines = [self.headline()]
        saved = {video.url: video.path for video in self.saved_videos}
        lines += [
            f"Video: {url}" + (f" (saved to {saved[url]})" if url in saved else "") for url in self.video_urls
        ]
        if self.download_error:
            lines.append(f"Download failed: {self.download_error}")
        if self.saving_in_background:
            lines.append("Still saving the video in the background.")
        lines.append(self.next_step)
        return "\n".join(lines)


class UploadResult(UploadedImage):
    """What upload_image answers: the hosted URL of a local image, and what to do with it."""

    next_step: str

    def summary(self) -> str:
        expiry = f"until {self.expires_at}" if self.expires_at else "for 72 h"
        return (
            f"Uploaded {self.source} ({self.mime_type}, {self.size_bytes} bytes) to {self.url}; "
            f"it is kept {expiry}.\n{self.next_step}"
        )


class CostQuote(BaseModel):
    """What a request would cost, and whether submit_video would send it as it stands."""

    model: VideoModelId
    effective_format: EffectiveFormat
    estimated_cost: CostEstimate = Field(description="The estimate: an estimate, not the bill.")
    spending: Spending = Field(description="Estimated spend today and this month so far.")
    max_cost: float | None = Field(description="The max_cost given, if any.")
    confirm_above: float | None = Field(
        description="The server asks a person to approve estimates above this (APIMP_CONFIRM_ABOVE)."
    )
    needs_confirmation: bool = Field(
        description="Above the threshold: submit_video asks the person (MCP elicitation), or, from a client "
        "that cannot ask, needs a max_cost of at least the estimate."
    )
    refusal: str | None = Field(description="Why submit_video would refuse this request now, if it would.")
    next_step: str

    def summary(self) -> str:
        lines = [describe_cost(self.estimated_cost), self.spending.display]
        if self.refusal:
            lines.append(f"submit_video would refuse it: {self.refusal}")
        lines.append(self.next_step)
        return "\n".join(lines)


def describe_cost(cost: CostEstimate) -> str:
    """'Estimated cost: about 3.20 USD (8 s, 1080p, veo-3.1-generate-preview; at 0.40 USD/s, ...).'"""
    unit = "per task" if cost.basis == "per_task" else "/s"
    rate = f"{cost.rate:g} {cost.currency}{' ' if cost.basis == 'per_task' else ''}{unit}"
    return f"Estimated cost: {cost.display} ({cost.shape}; at {rate} from {cost.source})."


class TaskList(BaseModel):
    """Tasks from the journal, newest first, with the estimated spend of today and this month."""

    tasks: list[TaskSummary]
    status_filter: EntryStatus | None = None
    spending: Spending | None = Field(default=None, description="Estimated spend today and this month.")

    def summary(self) -> str:
        if not self.tasks:
            scope = f" with status {self.status_filter}" if self.status_filter else ""
            return f"The journal holds no tasks{scope}."
        lines = [f"{len(self.tasks)} task(s), newest first:"]
        for entry in self.tasks:
            handle = entry.task_id or entry.entry_id
            detail = f" {entry.progress}%" if entry.progress is not None and not entry.is_terminal else ""
            where = f" -> {entry.local_paths[0]}" if entry.local_paths else ""
            cost = (
                f" ~{entry.estimated_cost:g} {entry.cost_currency}"
                if entry.estimated_cost is not None
                else ""
            )
            lines.append(
                f"- {handle} [{entry.status}{detail}] {entry.model or '?'} {entry.recorded_at}{cost}{where}"
            )
        if self.spending is not None:
            lines.append(self.spending.display)
        return "\n".join(lines)
