"""A principal's limits on submits (running tasks, submits per hour), checked before anything is sent.

The journal is the record of what a principal submitted, so the limits are counted from it. The
check and the journal entry of the submit it allows must happen as one step, or parallel submits
(on this instance or on another one sharing the journal) would all see room for one more: the
caller holds the store's `submit_lock` across both (see `Submitter` in `submits`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import Principal
from apimp_video_mcp.errors import LimitExceededError
from apimp_video_mcp.store import TaskStore
from apimp_video_mcp.store.records import journal_time


class SubmitLimits:
    """Refuses a submit that would break its principal's limits, naming the limit and when it frees up."""

    def __init__(self, journal: TaskStore) -> None:
        self.journal = journal

    @staticmethod
    def apply_to(principal: Principal) -> bool:
        """Whether the principal has a limit to count at all."""
        limits = principal.limits
        return limits.max_running_tasks is not None or limits.max_submits_per_hour is not None

    async def check(self, principal: Principal) -> None:
        """Raise `LimitExceededError` when one more submit would break one of the principal's limits.

        Final only under the principal's `submit_lock`, held until the submit is journaled; without
        it, an early refusal (before images are uploaded) that a parallel submit may outdate.
        """
        if self.apply_to(principal):
            await self._check(principal)

    async def _check(self, principal: Principal) -> None:
        limits = principal.limits
        window = timedelta(seconds=defaults.LIMIT_WINDOW_SECONDS)
        now = datetime.now(UTC)
        since = journal_time(now - window)
        recent = await self.journal.submissions_since(principal=principal.id, since=since)
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


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


def _minutes(span: timedelta) -> str:
    minutes = max(1, round(span.total_seconds() / 60))
    return f"{minutes} min"
