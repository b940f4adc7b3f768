"""When to retry a request and how long to wait first: pure functions, tested by a table.

Only idempotent requests (status queries, downloads) use these. A submit is retried only when
the connection was never made, because a submit that reached APIMP may have created, and
charged for, a task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from apimp_video_mcp import defaults

RETRYABLE_STATUS_CODES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in all, and the shape of the backoff between them."""

    max_attempts: int = defaults.RETRY_MAX_ATTEMPTS
    base_delay_seconds: float = defaults.RETRY_BASE_DELAY_SECONDS
    max_delay_seconds: float = defaults.RETRY_MAX_DELAY_SECONDS
    max_retry_after_seconds: float = defaults.RETRY_AFTER_MAX_SECONDS


def is_retryable_status(status_code: int) -> bool:
    """Rate limits and server-side failures pass; a 4xx about the request itself will not."""
    return status_code in RETRYABLE_STATUS_CODES


def parse_retry_after(
    retry_after: str | None, retry_after_ms: str | None = None, *, now: datetime | None = None
) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`; None if absent
    or unreadable. A date in the past means no wait."""
    if retry_after_ms:
        try:
            return max(0.0, float(retry_after_ms) / 1000)
        except ValueError:
            pass
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay_seconds(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): exponential, capped, with jitter.

    The jitter scales the delay by 0.75-1.0 so that many clients failing together do not retry
    together, while the delay stays predictable enough to reason about.
    """
    raw = policy.base_delay_seconds * 2.0 ** (attempt - 1)
    capped = min(raw, policy.max_delay_seconds)
    return capped * (1 - 0.25 * (rng or random).random())


def retry_delay_seconds(
    attempt: int, policy: RetryPolicy, retry_after_seconds: float | None, rng: random.Random | None = None
) -> float | None:
    """The wait before the next attempt, or None when we should give up now.

    The server's Retry-After wins over our own backoff; one longer than the policy allows ends the
    retries, so the caller can tell the agent how long to wait instead of holding a tool call open.
    """
    if attempt >= policy.max_attempts:
        return None
    if retry_after_seconds is not None:
        if retry_after_seconds > policy.max_retry_after_seconds:
            return None
        return retry_after_seconds
    return backoff_delay_seconds(attempt, policy, rng)
