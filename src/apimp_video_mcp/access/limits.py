"""A principal's limits on submits (running tasks, submits per hour), checked before anything is sent.

The journal is the record of what a principal submitted, so the limits are counted from it. The
check and the journal entry of the submit it allows must happen as one step, or parallel submits
would all see room for one more: `checked` holds a per-principal lock across both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import Principal
from apimp_video_mcp.errors import LimitExceededError
from apimp_video_mcp.store import TaskStore


class SubmitLimits:
    """Refuses a submit that would break its principal's limits, naming the limit and when it frees up."""

    def __init__(self, journal: TaskStore) -> None:
        self.journal = journal
        self._locks: dict[str, anyio.Lock] = {}

    @asynccontextmanager
    async def checked(self, principal: Principal) -> AsyncIterator[None]:
        """Check the limits, and hold them while the block journals the submit they allowed."""
        limits = principal.limits
        if limits.max_running_tasks is None and limits.max_submits_per_hour is None:
            yield
            return
        async with self._locks.setdefault(principal.id, anyio.Lock()):
            await self._check(principal)
            yield

    async def _check(self, principal: Principal) -> None:
        limits = principal.limits
        window = timedelta(seconds=defaults.LIMIT_WINDOW_SECONDS)
        now = datetime.now(UTC)
        recent = await self.journal.submissions_since(principal=principal.id, since=_iso(now - window))
        per_hour = limits.max_submits_per_hour
        if per_hour is not None and len(recent) >= per_hour:
            # The oldest submits must leave the window until one fewer than the limit remain.
            frees_at = _parse_time(recent[len(recent) - per_hour].recorded_at) + window
            raise LimitExceededError(
                "submits per hour",
                per_hour,
                f"The next submit is possible at {_clock(frees_at)} UTC (in {_minutes(frees_at - now)}).",
            )
        running = [entry for entry in recent if not entry.is_terminal]
        max_running = limits.max_running_tasks
        if max_running is not None and len(running) >= max_running:
            ids = ", ".join(entry.task_id or entry.entry_id for entry in running)
            frees_at = _parse_time(running[0].recorded_at) + window
            raise LimitExceededError(
                "running tasks",
                max_running,
                f"It frees up as soon as one of them ends ({ids}: wait_for_video on one of them), and "
                f"at {_clock(frees_at)} UTC at the latest (in {_minutes(frees_at - now)}), when the "
                f"oldest stops counting ({defaults.LIMIT_WINDOW_SECONDS / 3600:g} h after its submit).",
            )


def _iso(moment: datetime) -> str:
    """As the journal writes its times (so they compare as strings)."""
    return moment.isoformat(timespec="milliseconds")


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


def _minutes(span: timedelta) -> str:
    minutes = max(1, round(span.total_seconds() / 60))
    return f"{minutes} min"
