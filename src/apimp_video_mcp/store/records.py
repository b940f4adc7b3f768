"""What a task store records about each task: the shapes every backend reads and writes."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from apimp_video_mcp import defaults
from apimp_video_mcp.models import TERMINAL_STATUSES, TaskFile, TaskSnapshot

# How a submit ended. "sending" survives only if the server died during the request; it is read
# back as "unknown", because the task may or may not exist upstream.
SubmitState = Literal["sending", "accepted", "unknown"]
EntryStatus = Literal["not_started", "running", "finished", "failed", "submit_outcome_unknown"]


def journal_time(moment: datetime) -> str:
    """The journal's one spelling of an instant: UTC, to the millisecond, so text order is time order
    (SQLite stores it so; PostgreSQL's timestamps are read back in it; `since` arguments take it)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class TaskEvent(BaseModel):
    """One change of a task's status or progress, with when we saw it."""

    at: str
    status: str
    progress: int | None


class TaskRecord(BaseModel):
    """What both the whole entry and a listing's summary say of a task."""

    entry_id: str = Field(
        description="The journal's own id; the only handle of a submit whose outcome is unknown."
    )
    task_id: str | None = Field(description="APIMP's task id (None when the submit's outcome is unknown).")
    principal: str = Field(
        default="local", description="Who the task belongs to: 'local' on stdio, else the caller's principal."
    )
    model: str | None
    status: EntryStatus
    progress: int | None
    video_urls: list[str]
    local_paths: list[str]
    estimated_cost: float | None = Field(
        default=None, description="The estimate recorded when it was submitted (an estimate, not the bill)."
    )
    cost_currency: str | None = Field(default=None, description="The unit of estimated_cost.")
    error_message: str | None
    created_time: str | None = Field(description="When APIMP created the task, as APIMP wrote it.")
    finished_time: str | None
    recorded_at: str = Field(description="When the journal first recorded the task (UTC).")
    updated_at: str = Field(description="When the journal last changed (UTC).")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class JournalEntry(TaskRecord):
    """Everything known about one task."""

    request: dict[str, Any] | None = Field(description="The body sent to APIMP (it never contains the key).")
    submit_state: SubmitState
    upstream_status: str | None
    events: list[TaskEvent] = Field(
        default_factory=list, description="Every status change seen, oldest first."
    )

    def to_snapshot(self) -> TaskSnapshot:
        """The last status seen, as if APIMP had just said it (for tasks that can no longer change)."""
        if self.task_id is None or self.status == "submit_outcome_unknown":
            raise ValueError(f"{self.entry_id} has no known task to describe")
        return TaskSnapshot(
            task_id=self.task_id,
            status=self.status,
            upstream_status=self.upstream_status or self.status,
            progress=self.progress,
            created_time=self.created_time,
            finished_time=self.finished_time,
            error_message=self.error_message,
            files=[TaskFile(file_url=url, file_type="video") for url in self.video_urls],
        )


class TaskSummary(TaskRecord):
    """One task as a listing shows it: everything but the request, whose prompt is cut to a preview.

    A listing of many tasks must stay small whatever their requests hold; the whole entry, request
    and events included, is one task's resource (apimp://tasks/{task_id}).
    """

    prompt_preview: str | None = Field(
        description=f"The prompt's first {defaults.PROMPT_PREVIEW_CHARS} characters (… when cut)."
    )


def prompt_preview(prompt_head: object) -> str | None:
    """The preview of a prompt from its first PROMPT_PREVIEW_CHARS + 1 characters (read by the store)."""
    if not isinstance(prompt_head, str):
        return None
    if len(prompt_head) <= defaults.PROMPT_PREVIEW_CHARS:
        return prompt_head
    return prompt_head[: defaults.PROMPT_PREVIEW_CHARS] + "…"


def stored_summary(columns: Mapping[str, Any]) -> TaskSummary:
    """A summary from a backend's row, whose `prompt_head` holds the prompt's first characters."""
    submit_state = columns["submit_state"]
    return TaskSummary.model_validate(
        {
            **columns,
            "prompt_preview": prompt_preview(columns.get("prompt_head")),
            "status": columns["status"] if submit_state == "accepted" else "submit_outcome_unknown",
        }
    )


class PrunedTasks(BaseModel):
    """What a prune removed: tasks, their events, and where their videos had been saved."""

    tasks: int
    events: int
    local_paths: list[str] = Field(description="Saved videos of the pruned tasks (the files are left alone).")


def new_entry_id() -> str:
    """The journal's own id for an entry: random, so instances sharing a store never collide."""
    return f"entry_{secrets.token_hex(8)}"


def stored_entry(columns: Mapping[str, Any]) -> JournalEntry:
    """An entry from a backend's row (its JSON already decoded), as every backend reads it back.

    A submit that was never accepted reads as `submit_outcome_unknown`, and one still "sending"
    as "unknown": its server may have died mid-request, so the task may or may not exist.
    """
    submit_state = columns["submit_state"]
    return JournalEntry.model_validate(
        {
            **columns,
            "submit_state": "unknown" if submit_state == "sending" else submit_state,
            "status": columns["status"] if submit_state == "accepted" else "submit_outcome_unknown",
        }
    )


class FinishedGeneration(BaseModel):
    """A finished task as the poll schedule learns from it: how long APIMP took, and for what format."""

    created_time: str | None
    finished_time: str | None
    request: dict[str, Any] | None = Field(
        description="The request body without its prompt and images: enough to tell the format."
    )


class PollingClaim(BaseModel):
    """The answer to a claim on a task's polling lease (a cluster's one-poller-per-task rule)."""

    held: bool = Field(description="The claimer holds the lease now, and may ask APIMP.")
    lapses_in_seconds: float | None = Field(
        default=None,
        description="When another instance holds it: the seconds its lease has left unless renewed.",
    )
