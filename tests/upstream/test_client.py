"""The upstream client's edges: dead hosts, lost answers, slow answers and odd envelopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from apimp_video_mcp.server import build_server
from tests.support import Upstream, fast_settings, structured, text_of

pytestmark = pytest.mark.anyio

# What these tests time out is an answer delayed by 30 s; every other request must finish within
# it, also on a loaded machine, so it is generous rather than tight.
REQUEST_TIMEOUT_SECONDS = 1.0

SUBMIT = {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a paper boat on a stream"}}


async def test_a_dead_host_means_nothing_was_submitted(tmp_path: Path) -> None:
    settings = fast_settings("http://127.0.0.1:9", tmp_path, retry_max_attempts=2)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("submit_video", SUBMIT)

    assert result.is_error
    assert "Could not connect to APIMP" in text_of(result)
    assert "nothing was charged" in text_of(result)


async def test_a_submit_whose_answer_is_lost_is_reported_and_never_resent(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/submit", status=200, delay_seconds=30)
    settings = fast_settings(upstream.base_url, tmp_path, request_timeout_seconds=REQUEST_TIMEOUT_SECONDS)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("submit_video", SUBMIT)

    assert result.is_error
    assert "may have been created" in text_of(result)
    assert "NOT resubmitted" in text_of(result)
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1


async def test_a_slow_status_answer_is_retried(upstream: Upstream, tmp_path: Path) -> None:
    settings = fast_settings(upstream.base_url, tmp_path, request_timeout_seconds=REQUEST_TIMEOUT_SECONDS)
    async with Client(build_server(settings)) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=200, delay_seconds=30)
        result = await client.call_tool("get_status", {"task_id": task_id})

    assert structured(result)["task_id"] == task_id
    assert len(upstream.simulator.requests_to("/api/generate/status")) == 2


async def test_an_error_code_inside_a_200_envelope_is_an_error(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.inject_fault(
        path_prefix="/api/generate/submit",
        status=200,
        body={"code": 400, "error": {"message": "insufficient balance", "type": "invalid_request_error"}},
    )
    async with Client(build_server(fast_settings(upstream.base_url, tmp_path))) as client:
        result = await client.call_tool("submit_video", SUBMIT)

    assert result.is_error
    assert "insufficient balance" in text_of(result)


async def test_a_long_retry_after_is_passed_on_instead_of_waited_for(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=429, retry_after="600")
    async with Client(build_server(fast_settings(upstream.base_url, tmp_path))) as client:
        result = await client.call_tool("get_status", {"task_id": "task_abc"})

    assert result.is_error
    assert "wait 600 s" in text_of(result)
    assert len(upstream.simulator.requests_to("/api/generate/status")) == 1


async def test_persistent_server_errors_end_with_a_clear_message(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=503, times=10)
    settings = fast_settings(upstream.base_url, tmp_path, retry_max_attempts=3)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_status", {"task_id": "task_abc"})

    assert result.is_error
    assert "server error (HTTP 503" in text_of(result)
    assert len(upstream.simulator.requests_to("/api/generate/status")) == 3
