"""The retry rules, as a table."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from apimp_video_mcp.upstream.retry import (
    RetryPolicy,
    backoff_delay_seconds,
    is_retryable_status,
    parse_retry_after,
    retry_delay_seconds,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("retry_after", "retry_after_ms", "seconds"),
    [
        (None, None, None),
        ("", None, None),
        ("3", None, 3.0),
        ("1.5", None, 1.5),
        ("-4", None, 0.0),
        (None, "250", 0.25),
        ("9", "250", 0.25),  # the more precise header wins
        ("Wed, 25 Nov 2026 12:00:30 GMT", None, 30.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", None, 0.0),
        ("soon", None, None),
        ("7", "junk", 7.0),
    ],
)
def test_parse_retry_after(
    retry_after: str | None, retry_after_ms: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(retry_after, retry_after_ms, now=NOW) == seconds


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (501, False),
    ],
)
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_backoff_doubles_is_capped_and_jittered_down_by_at_most_a_quarter() -> None:
    policy = RetryPolicy(base_delay_seconds=0.5, max_delay_seconds=4.0)
    rng = random.Random(1)

    for attempt, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        delay = backoff_delay_seconds(attempt, policy, rng)
        assert 0.75 * full <= delay <= full


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, 2.0, 2.0),  # the server's wish wins over our backoff
        (1, 61.0, None),  # too long to hold a tool call open: give up and say how long
        (5, None, None),  # attempts exhausted
        (5, 1.0, None),
    ],
)
def test_retry_delay_decides_when_to_give_up(
    attempt: int, retry_after: float | None, expected: float | None
) -> None:
    assert retry_delay_seconds(attempt, RetryPolicy(max_attempts=5), retry_after) == expected
