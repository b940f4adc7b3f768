"""APIMP_AUTH=byok over real streamable HTTP: each caller's own APIMP key, and only on its requests.

The simulator records every request with its Authorization header, so the tests can prove which
key reached APIMP for which caller.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.server.auth import build_auth
from apimp_video_mcp.simulator import ReceivedRequest
from tests.support import Upstream, fast_settings, structured, text_of
from tests.support.http import client_with, serving

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a kite over dunes"}}
ALICES_KEY = "sk-alice-0123456789abcdef"
BOBS_KEY = "sk-bob-fedcba9876543210"


@pytest.fixture
def byok_settings(upstream: Upstream, tmp_path: Path) -> Settings:
    upstream.simulator.api_keys = frozenset({ALICES_KEY, BOBS_KEY})
    # No APIMP_API_KEY at all: the server spends nobody's credits but its callers'.
    return fast_settings(
        upstream.base_url, tmp_path / "videos", api_key=None, auth="byok", byok_secret="test-secret"
    )


@pytest.fixture
async def url(byok_settings: Settings) -> AsyncIterator[str]:
    auth = build_auth(byok_settings, base_url="http://127.0.0.1")
    server = build_server(byok_settings, transport="streamable-http", auth=auth)
    async with serving(server, byok_settings) as served:
        yield served


def keys_sent(requests: list[ReceivedRequest]) -> set[str]:
    return {request.headers.get("authorization", "") for request in requests}


async def test_each_callers_key_reaches_apimp_only_on_that_callers_requests(
    url: str, upstream: Upstream, byok_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with anyio.fail_after(30):
        async with client_with(url, ALICES_KEY) as as_alice, client_with(url, BOBS_KEY) as as_bob:
            alices = structured(await as_alice.call_tool("submit_video", SUBMIT))["task_id"]
            before_bob = len(upstream.simulator.received)
            bobs = structured(await as_bob.call_tool("submit_video", SUBMIT))["task_id"]
            bob_submit = upstream.simulator.received[before_bob:]
            alice_waited = structured(await as_alice.call_tool("wait_for_video", {"task_id": alices}))
            bob_waited = structured(await as_bob.call_tool("wait_for_video", {"task_id": bobs}))
            bob_on_alices = text_of(await as_bob.call_tool("get_status", {"task_id": alices}))
            listings = [
                structured(await client.call_tool("list_tasks", {}))["tasks"] for client in (as_alice, as_bob)
            ]

    simulator = upstream.simulator
    assert (alice_waited["status"], bob_waited["status"]) == ("finished", "finished")
    assert simulator.tasks[alices].api_key == ALICES_KEY
    assert simulator.tasks[bobs].api_key == BOBS_KEY
    assert keys_sent(bob_submit) == {f"Bearer {BOBS_KEY}"}
    assert keys_sent(simulator.requests_to(f"/api/generate/status/{alices}")) == {f"Bearer {ALICES_KEY}"}
    assert keys_sent(simulator.requests_to(f"/api/generate/status/{bobs}")) == {f"Bearer {BOBS_KEY}"}
    assert "no task" in bob_on_alices
    assert [[task["task_id"] for task in tasks] for tasks in listings] == [[alices], [bobs]]
    principals = {tasks[0]["principal"] for tasks in listings}
    assert len(principals) == 2
    assert all(principal.startswith("byok:") for principal in principals)
    # Never stored, never logged, never in a result.
    journal = b"".join(
        path.read_bytes() for path in Path(byok_settings.journal_path).parent.glob("*journal*")
    )
    assert alices.encode() in journal
    for key in (ALICES_KEY, BOBS_KEY):
        assert key.encode() not in journal
        assert key not in caplog.text
        assert key not in str(listings) + bob_on_alices


async def test_a_key_apimp_refuses_gets_apimps_answer_and_nothing_else(url: str, upstream: Upstream) -> None:
    async with client_with(url, "sk-nobody-has-this-key") as client:
        refused = await client.call_tool("submit_video", SUBMIT)

    assert refused.is_error
    assert "APIMP did not accept the API key" in text_of(refused)
    assert "the key your client sends" in text_of(refused)
    assert "sk-nobody-has-this-key" not in text_of(refused)
    assert upstream.simulator.tasks == {}


async def test_the_same_key_is_the_same_principal_across_connections(url: str) -> None:
    async with client_with(url, ALICES_KEY) as first:
        task_id = structured(await first.call_tool("submit_video", SUBMIT))["task_id"]
    async with client_with(url, ALICES_KEY) as again:
        listed = structured(await again.call_tool("list_tasks", {}))

    assert [task["task_id"] for task in listed["tasks"]] == [task_id]


async def test_no_token_is_refused_before_anything_runs(url: str) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(url, json={}, headers={"content-type": "application/json"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
