"""An APIMP answer is read within a deadline and up to a size, whatever the server sends.

httpx2's timeouts bound each read, not an answer: these servers (real HTTP on loopback) answer
without end, a byte at a time, or with a small gzip body that unpacks into megabytes.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import AnswerTooLargeError, SubmitOutcomeUnknownError, UpstreamUnreachableError
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.simulator import running_app
from apimp_video_mcp.upstream.client import ApimpClient, build_http_client
from tests.support.hostile import App, talking

pytestmark = pytest.mark.anyio

TASK_ID = "task_0123456789abcdef"
SUBMIT = SubmitRequest.model_validate(
    {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a kite over a beach"}}
)
READ_TIMEOUT_SECONDS = 0.5


def bomb() -> App:
    """A gzip body of a few KiB that unpacks into more than the limit."""
    packed = gzip.compress(b" " * (defaults.UPSTREAM_ANSWER_MAX_BYTES + 1024))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": packed})

    return app


@asynccontextmanager
async def client_of(app: App) -> AsyncIterator[ApimpClient]:
    async with running_app(app) as base_url:
        http = build_http_client(base_url, request_timeout_seconds=READ_TIMEOUT_SECONDS)
        try:
            yield ApimpClient(lambda: http, lambda: "sk-test")
        finally:
            await http.aclose()


@pytest.mark.parametrize("app", [talking(b" " * 65536), bomb()], ids=["endless", "gzip bomb"])
async def test_an_answer_past_the_limit_is_cut_off_unread(app: App) -> None:
    async with client_of(app) as client:
        with anyio.fail_after(10), pytest.raises(AnswerTooLargeError, match="cut off unread"):
            await client.get_status(TASK_ID, retry=False)


async def test_an_answer_trickled_a_byte_at_a_time_ends_by_the_read_timeout() -> None:
    async with client_of(talking(b" ", pause_seconds=0.05)) as client:
        with anyio.fail_after(10), pytest.raises(UpstreamUnreachableError, match="ReadTimeout"):
            await client.get_status(TASK_ID, retry=False)


async def test_a_submit_answered_without_end_may_have_created_a_task() -> None:
    async with client_of(talking(b" " * 65536)) as client:
        with anyio.fail_after(10), pytest.raises(SubmitOutcomeUnknownError) as raised:
            await client.submit(SUBMIT)

    assert "cut off unread" in str(raised.value)
    assert "may have been created (and charged)" in str(raised.value)  # never reported as not created
