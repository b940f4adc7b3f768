"""Asking the person before an expensive submit, through the real Client, in both protocol eras.

In memory and over streamable HTTP: accept sends, decline and cancel send nothing and say so; a
client without elicitation is refused above the threshold and told how to proceed; max_cost
refusals never reach the upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from tests.support import Mode, Upstream, fast_settings, structured, text_of
from tests.support.processes import http_server_process

pytestmark = pytest.mark.anyio

STANDARD = "veo-3.1-generate-preview"  # 8 s at Google's list price: 3.20 USD, above the 2.00 default
EXPENSIVE = {"model": STANDARD, "input": {"prompt": "a lighthouse in a storm, waves crashing"}}
CHEAP = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a paper boat", "duration": 4}}


class Person:
    """Stands in for the user in front of the host: answers every question the same way, and notes it."""

    def __init__(self, action: str, content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = (
            content if content is not None else ({"generate": True} if action == "accept" else None)
        )
        self.questions: list[ElicitRequestParams] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params)
        return ElicitResult(action=self.action, content=self.content)


@pytest.fixture
def confirming_settings(upstream: Upstream, tmp_path: Path) -> Settings:
    return fast_settings(upstream.base_url, tmp_path / "videos", confirm_above_cost=2.0)


def submits(upstream: Upstream) -> int:
    return len(upstream.simulator.requests_to("/api/generate/submit"))


async def test_accepting_the_price_sends_the_request(
    confirming_settings: Settings, upstream: Upstream, mode: Mode
) -> None:
    person = Person("accept")
    async with Client(build_server(confirming_settings), mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool("submit_video", EXPENSIVE)

    data = structured(result)
    [question] = person.questions
    assert question.message == "About 3.20 USD (estimate): 8 s, 720p, veo-3.1-generate-preview. Generate?"
    assert submits(upstream) == 1
    assert data["estimated_cost"]["amount"] == pytest.approx(3.2)
    assert "Estimated cost: about 3.20 USD" in text_of(result)


@pytest.mark.parametrize(
    ("action", "content", "said"),
    [
        ("decline", None, "declined to generate"),
        ("cancel", None, "dismissed the question"),
        ("accept", {"generate": False}, "declined to generate"),
    ],
    ids=["decline", "cancel", "unticked"],
)
async def test_declining_or_cancelling_sends_nothing_and_says_so(
    confirming_settings: Settings,
    upstream: Upstream,
    mode: Mode,
    action: str,
    content: dict[str, Any] | None,
    said: str,
) -> None:
    person = Person(action, content)
    async with Client(build_server(confirming_settings), mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool("submit_video", EXPENSIVE)
        listed = structured(await client.call_tool("list_tasks", {}))

    assert result.is_error
    message = text_of(result)
    assert said in message
    assert "Nothing was sent and nothing was charged" in message
    assert "about 3.20 USD" in message
    assert len(person.questions) == 1
    assert upstream.simulator.received == []  # not even an image upload
    assert listed["tasks"] == []
    assert listed["spending"]["today"] == 0


async def test_a_cheap_request_is_not_asked_about(
    confirming_settings: Settings, upstream: Upstream, mode: Mode
) -> None:
    person = Person("decline")
    async with Client(build_server(confirming_settings), mode=mode, elicitation_callback=person) as client:
        structured(await client.call_tool("submit_video", CHEAP))

    assert person.questions == []
    assert submits(upstream) == 1


async def test_without_elicitation_an_expensive_request_is_refused_with_what_to_do(
    confirming_settings: Settings, upstream: Upstream, mode: Mode
) -> None:
    async with Client(build_server(confirming_settings), mode=mode) as client:
        refused = await client.call_tool("submit_video", EXPENSIVE)
        resent = await client.call_tool("submit_video", {**EXPENSIVE, "max_cost": 3.2})

    assert refused.is_error
    message = text_of(refused)
    assert "does not support MCP elicitation" in message
    assert "Ask the user" in message
    assert "max_cost set to 3.2" in message
    assert structured(resent)["estimated_cost"]["amount"] == pytest.approx(3.2)
    assert submits(upstream) == 1  # only the resent one, which carried no max_cost upstream
    [sent] = upstream.simulator.requests_to("/api/generate/submit")
    assert sent.json() == EXPENSIVE


async def test_a_max_cost_below_the_estimate_is_refused_before_anything_is_sent(
    confirming_settings: Settings, upstream: Upstream, mode: Mode
) -> None:
    person = Person("accept")
    async with Client(build_server(confirming_settings), mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool("submit_video", {**EXPENSIVE, "max_cost": 1.5})

    assert result.is_error
    assert "above max_cost 1.50 USD" in text_of(result)
    assert "about 3.20 USD" in text_of(result)
    assert person.questions == []  # nobody is asked to approve what would be refused anyway
    assert upstream.simulator.received == []


async def test_estimate_cost_says_what_submit_would_do_and_sends_nothing(
    confirming_settings: Settings, upstream: Upstream, mode: Mode
) -> None:
    async with Client(build_server(confirming_settings), mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        expensive = structured(await client.call_tool("estimate_cost", EXPENSIVE))
        capped = structured(await client.call_tool("estimate_cost", {**EXPENSIVE, "max_cost": 1}))
        invalid = await client.call_tool(
            "estimate_cost",
            {"model": "veo-3.0-generate-001", "input": {"prompt": "x", "metadata": {"resolution": "4k"}}},
        )

    assert tools["estimate_cost"].annotations is not None
    assert tools["estimate_cost"].annotations.read_only_hint is True
    assert (
        tools["estimate_cost"].input_schema["properties"].keys()
        == tools["submit_video"].input_schema["properties"].keys()
    )
    assert expensive["needs_confirmation"] is True
    assert expensive["refusal"] is None
    assert capped["refusal"] is not None
    assert "max_cost" in capped["refusal"]
    assert invalid.is_error
    assert "input.metadata.resolution" in text_of(invalid)
    assert upstream.simulator.received == []


@pytest.fixture
async def http_server(upstream: Upstream, tmp_path: Path) -> AsyncIterator[str]:
    """The console script over streamable HTTP, with its default confirmation threshold (2.00 USD)."""
    async with http_server_process(upstream, tmp_path / "videos") as server:
        yield server.url


async def test_over_streamable_http_the_person_is_asked_and_decides(
    http_server: str, upstream: Upstream, mode: Mode
) -> None:
    yes, no = Person("accept"), Person("decline")
    with anyio.fail_after(30):
        async with Client(http_server, mode=mode, elicitation_callback=no) as client:
            declined = await client.call_tool("submit_video", EXPENSIVE)
        assert submits(upstream) == 0
        async with Client(http_server, mode=mode, elicitation_callback=yes) as client:
            accepted = await client.call_tool("submit_video", EXPENSIVE)

    assert declined.is_error
    assert "declined" in text_of(declined)
    assert structured(accepted)["task_id"].startswith("task_")
    assert len(yes.questions) == len(no.questions) == 1
    assert submits(upstream) == 1
