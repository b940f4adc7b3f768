"""Uploading a local image to APIMP: the whole file again on a retry, refusals spelled out, and
nothing submitted after a failed upload."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from tests.support import Upstream, fast_settings, text_of
from tests.support.uploads import PNG, submit_arguments

pytestmark = pytest.mark.anyio

UPLOAD = "/api/common/upload/stream"
SUBMIT = "/api/generate/submit"


@pytest.fixture
def settings(upload_settings: Settings) -> Settings:
    return upload_settings


async def test_a_server_error_on_upload_is_retried_with_the_whole_file_again(
    client: Client, upstream: Upstream, png: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=503)

    result = await client.call_tool("submit_video", submit_arguments(image=str(png)))

    assert not result.is_error, text_of(result)
    first, second = upstream.simulator.requests_to(UPLOAD)
    assert PNG in first.body
    assert PNG in second.body
    assert len(upstream.simulator.requests_to(SUBMIT)) == 1


async def test_a_refused_upload_stops_the_submit_and_says_nothing_was_charged(
    client: Client, upstream: Upstream, png: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=400, body={"detail": "Invalid file data"})

    result = await client.call_tool("submit_video", submit_arguments(image=str(png)))

    assert result.is_error
    assert "Invalid file data" in text_of(result)
    assert "NOT submitted" in text_of(result)
    assert str(png) in text_of(result)
    assert upstream.simulator.requests_to(SUBMIT) == []


async def test_a_validation_error_from_the_upload_api_is_spelled_out(
    client: Client, upstream: Upstream, png: Path
) -> None:
    problem = {"detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required"}]}
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=422, body=problem)

    result = await client.call_tool("upload_image", {"path": str(png)})

    assert result.is_error
    assert "body.file: Field required" in text_of(result)


@pytest.mark.parametrize(
    ("answer", "reported"),
    [
        ({"success": False, "code": 413, "msg": "File too large"}, "HTTP 413: File too large"),
        ({"success": False, "msg": "Unsupported file"}, "rejected the request: Unsupported file"),
        ({"success": True, "code": 200, "data": {"file_id": "f1"}}, "names no file URL"),
    ],
)
async def test_an_upload_answer_that_is_not_a_success_is_an_error(
    client: Client, upstream: Upstream, png: Path, answer: dict[str, Any], reported: str
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=200, body=answer)

    result = await client.call_tool("upload_image", {"path": str(png)})

    assert result.is_error
    assert reported in text_of(result)
    assert "NOT submitted" not in text_of(result), "upload_image submits nothing, so it says nothing of it"


async def test_an_upload_gives_up_after_the_retries_with_the_last_error(
    upstream: Upstream, tmp_path: Path, allowed: Path, png: Path
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "v", upload_roots=(allowed,), retry_max_attempts=2)
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=503, times=2)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("submit_video", submit_arguments(image=str(png)))

    assert result.is_error
    assert "HTTP 503" in text_of(result)
    assert len(upstream.simulator.requests_to(UPLOAD)) == 2
    assert upstream.simulator.requests_to(SUBMIT) == []


async def test_an_unreachable_upload_endpoint_is_reported_as_such(
    tmp_path: Path, allowed: Path, png: Path
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = fast_settings(dead, tmp_path / "v", upload_roots=(allowed,), retry_max_attempts=2)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("upload_image", {"path": str(png)})

    assert result.is_error
    assert "Could not reach APIMP to upload first_frame.png" in text_of(result)
