"""ApimpClient on its own, over httpx2's ASGI transport against the simulator's app: no MCP, no
sockets, and the backoff's sleeps recorded instead of slept, so each rule is seen directly."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import pytest

from apimp_video_mcp.errors import (
    AuthenticationError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    UpstreamRejectedError,
    UpstreamServerError,
)
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator
from apimp_video_mcp.upstream.client import ApimpClient
from apimp_video_mcp.upstream.multipart import MultipartFileBody
from apimp_video_mcp.upstream.retry import RetryPolicy
from tests.support.clock import FakeClock
from tests.support.uploads import PNG

pytestmark = pytest.mark.anyio

SUBMIT = "/api/generate/submit"
STATUS = "/api/generate/status/"
BODY = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a lantern drifting downriver"}}


@dataclass
class Sleeps:
    """The backoff's sleep seam: records each delay and returns at once."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Direct:
    simulator: Simulator
    client: ApimpClient
    sleeps: Sleeps


@pytest.fixture
async def direct() -> AsyncIterator[Direct]:
    simulator = Simulator(task_duration_seconds=10.0, clock=FakeClock(start=1000.0), seed=5)
    sleeps = Sleeps()
    transport = httpx2.ASGITransport(app=simulator.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://apimp") as http:
        client = ApimpClient(
            lambda: http,
            lambda: SIMULATOR_API_KEY,
            retry_policy=RetryPolicy(max_attempts=3),
            sleep=sleeps,
            rng=random.Random(0),
        )
        yield Direct(simulator, client, sleeps)


async def test_a_submit_sends_the_request_body_as_given_with_the_bearer_key(direct: Direct) -> None:
    accepted = await direct.client.submit(SubmitRequest.model_validate(BODY))

    [sent] = direct.simulator.requests_to(SUBMIT)
    assert sent.json() == BODY
    assert sent.headers["authorization"] == f"Bearer {SIMULATOR_API_KEY}"
    assert accepted.task_id in direct.simulator.tasks
    assert accepted.status == "not_started"


async def test_a_status_is_parsed_with_its_video_once_finished(direct: Direct) -> None:
    task_id = (await direct.client.submit(SubmitRequest.model_validate(BODY))).task_id
    direct.simulator.finish_now(task_id)

    snapshot = await direct.client.get_status(task_id)

    assert (snapshot.task_id, snapshot.status, snapshot.progress) == (task_id, "finished", 100)
    [url] = snapshot.video_urls
    assert url.startswith(f"http://apimp/files/{task_id}.mp4?token=")


async def test_rate_limits_and_server_errors_are_retried_after_the_delay_apimp_asks(direct: Direct) -> None:
    task_id = (await direct.client.submit(SubmitRequest.model_validate(BODY))).task_id
    direct.simulator.inject_fault(path_prefix=STATUS, status=429, retry_after="2")
    direct.simulator.inject_fault(path_prefix=STATUS, status=503)

    snapshot = await direct.client.get_status(task_id)

    assert snapshot.task_id == task_id
    assert len(direct.simulator.requests_to(STATUS)) == 3
    assert direct.sleeps.delays[0] == 2.0  # Retry-After, as APIMP asked
    assert len(direct.sleeps.delays) == 2


async def test_a_status_query_gives_up_after_the_policys_attempts_with_the_last_error(direct: Direct) -> None:
    direct.simulator.inject_fault(path_prefix=STATUS, status=502, times=5)

    with pytest.raises(UpstreamServerError, match="502"):
        await direct.client.get_status("task_abc")

    assert len(direct.simulator.requests_to(STATUS)) == 3
    assert len(direct.sleeps.delays) == 2


async def test_one_attempt_only_when_the_caller_has_its_own_schedule(direct: Direct) -> None:
    direct.simulator.inject_fault(path_prefix=STATUS, status=429, retry_after="1")

    with pytest.raises(RateLimitedError) as caught:
        await direct.client.get_status("task_abc", retry=False)

    assert caught.value.retry_after_seconds == 1.0
    assert direct.sleeps.delays == []


async def test_a_submit_answered_with_a_server_error_is_never_sent_again(direct: Direct) -> None:
    direct.simulator.inject_fault(path_prefix=SUBMIT, status=502)

    with pytest.raises(SubmitOutcomeUnknownError, match="NOT resubmitted"):
        await direct.client.submit(SubmitRequest.model_validate(BODY))

    assert len(direct.simulator.requests_to(SUBMIT)) == 1


async def test_apimps_refusals_become_precise_errors(direct: Direct) -> None:
    with pytest.raises(TaskNotFoundError):
        await direct.client.get_status("task_doesnotexist")
    direct.simulator.api_keys = frozenset({"sk-other"})
    with pytest.raises(AuthenticationError):
        await direct.client.get_status("task_doesnotexist")
    direct.simulator.api_keys = frozenset({SIMULATOR_API_KEY})
    refused = {"code": 400, "error": {"message": "prompt violates policy", "type": "invalid_request_error"}}
    direct.simulator.inject_fault(path_prefix=SUBMIT, status=200, body=refused)
    with pytest.raises(UpstreamRejectedError, match="prompt violates policy"):
        await direct.client.submit(SubmitRequest.model_validate(BODY))


async def test_an_upload_streams_the_file_and_returns_where_it_is_hosted(direct: Direct) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield PNG

    body = MultipartFileBody(
        field="file", filename="frame.png", content_type="image/png", size_bytes=len(PNG), chunks=chunks
    )

    uploaded = await direct.client.upload_file(body)

    assert uploaded.file_url.startswith("http://apimp/uploads/")
    assert uploaded.mime_type == "image/png"
    assert [file.content for file in direct.simulator.uploads.files.values()] == [PNG]
