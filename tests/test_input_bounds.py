"""Bad input has bounds: what a caller sends is capped before it is sent, stored or listed, and
secrets in the configuration never come back out.

Through the SDK's real Client with the simulator on loopback as APIMP.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from apimp_video_mcp import defaults
from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server import build_server
from tests.support import Upstream, fast_settings, structured, text_of
from tests.support.processes import http_server_process

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"deeper": value}
    return value


async def submit_input(client: Client, **input_: Any) -> Any:
    return await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "a kite", **input_}})


async def test_the_schema_publishes_the_prompt_and_metadata_limits(client: Client) -> None:
    [tool] = [tool for tool in (await client.list_tools()).tools if tool.name == "submit_video"]
    video_input = tool.input_schema["properties"]["input"]
    metadata = video_input["properties"]["metadata"]

    assert video_input["properties"]["prompt"]["maxLength"] == defaults.PROMPT_MAX_CHARS
    assert metadata["properties"]["negativePrompt"]["maxLength"] == defaults.PROMPT_MAX_CHARS
    assert metadata["maxProperties"] == defaults.METADATA_MAX_KEYS
    assert str(defaults.METADATA_MAX_DEPTH) in metadata["description"]


@pytest.mark.parametrize(
    ("input_", "named"),
    [
        ({"prompt": "x" * (defaults.PROMPT_MAX_CHARS + 1)}, ["input.prompt", f"{defaults.PROMPT_MAX_CHARS}"]),
        (
            {"metadata": {"negativePrompt": "y" * (defaults.PROMPT_MAX_CHARS + 1)}},
            ["input.metadata.negativePrompt", f"{defaults.PROMPT_MAX_CHARS}"],
        ),
        (
            {"metadata": {"custom": nested(250)}},
            ["input.metadata", "nested", f"{defaults.METADATA_MAX_DEPTH}"],
        ),
        (
            {"metadata": {"custom": "z" * (defaults.METADATA_MAX_BYTES + 1)}},
            ["input.metadata", f"{defaults.METADATA_MAX_BYTES}", "bytes"],
        ),
        (
            {"metadata": {f"key{number}": number for number in range(defaults.METADATA_MAX_KEYS + 1)}},
            ["input.metadata", f"{defaults.METADATA_MAX_KEYS}"],
        ),
    ],
)
async def test_oversized_or_unrepresentable_input_is_refused_before_anything_is_sent(
    client: Client, upstream: Upstream, input_: dict[str, Any], named: list[str]
) -> None:
    result = await submit_input(client, **input_)

    assert result.is_error
    for word in named:
        assert word in text_of(result)
    assert len(text_of(result)) < 2_000, "the error must not echo the oversized input back"
    assert upstream.simulator.requests_to("/api/generate/submit") == []
    assert structured(await client.call_tool("list_tasks", {}))["tasks"] == []


async def call_tool_raw(url: str, arguments_json: str) -> dict[str, Any]:
    """tools/call as raw JSON-RPC over streamable HTTP: the SDK's Client would turn NaN into null
    before sending, but any other client (Python's json module, for one) may send it as is."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    async with httpx2.AsyncClient(timeout=20) as http:
        opened = await http.post(url, json=initialize, headers=headers)
        session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        await http.post(
            url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**headers, **session},
        )
        call = '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "submit_video", '
        call += f'"arguments": {arguments_json}}}}}'
        answer = await http.post(url, content=call, headers={**headers, **session})
    [data] = [line.removeprefix("data:") for line in answer.text.splitlines() if line.startswith("data:")]
    result: dict[str, Any] = json.loads(data)["result"]
    return result


async def test_nan_and_infinities_in_metadata_are_refused_not_sent_as_null(
    upstream: Upstream, tmp_path: Path
) -> None:
    arguments = {
        "model": VEO,
        "input": {"prompt": "a kite", "metadata": {"guidance": math.nan, "weights": [1.0, math.inf]}},
    }
    async with http_server_process(upstream, tmp_path / "videos") as server:
        result = await call_tool_raw(
            server.url, json.dumps(arguments)
        )  # NaN and Infinity, as Python writes them

    message = result["content"][0]["text"]
    assert result["isError"], message
    assert "input.metadata" in message
    assert "finite" in message
    assert upstream.simulator.requests_to("/api/generate/submit") == []


async def test_input_at_the_limits_is_accepted(client: Client, upstream: Upstream) -> None:
    result = await submit_input(
        client,
        prompt="p" * defaults.PROMPT_MAX_CHARS,
        metadata={"custom": nested(defaults.METADATA_MAX_DEPTH - 1), "finite": 0.5},
    )

    structured(result)
    [sent] = upstream.simulator.requests_to("/api/generate/submit")
    assert sent.json()["input"]["metadata"]["finite"] == 0.5


async def test_list_tasks_and_the_tasks_resource_return_summaries_with_a_prompt_preview(
    client: Client, upstream: Upstream
) -> None:
    long_prompt = "a slow pan across a misty valley at dawn, " * 150
    for _ in range(3):
        structured(await submit_input(client, prompt=long_prompt[: defaults.PROMPT_MAX_CHARS]))

    listed = structured(await client.call_tool("list_tasks", {"limit": 100}))["tasks"]
    resource = json.loads((await client.read_resource("apimp://tasks")).contents[0].text)  # type: ignore[union-attr]
    task_id = listed[0]["task_id"]
    one = json.loads((await client.read_resource(f"apimp://tasks/{task_id}")).contents[0].text)  # type: ignore[union-attr]

    for summary in (*listed, *resource["tasks"]):
        assert "request" not in summary
        assert summary["prompt_preview"].startswith("a slow pan across a misty valley")
        assert len(summary["prompt_preview"]) <= defaults.PROMPT_PREVIEW_CHARS + 1  # the ellipsis
        assert summary["prompt_preview"].endswith("…")
        assert summary["model"] == VEO
    assert len(json.dumps(listed)) < 3 * 1_000
    assert one["request"]["input"]["prompt"] == long_prompt[: defaults.PROMPT_MAX_CHARS]  # all of it, here


@pytest.mark.parametrize(
    "key", ["sk-abc\r\ndef", "sk-abc\ndef", "sk-abc def", "sk-abc\x00def", "sk-abc\x7fdef", "sk-äbc"]
)
def test_an_api_key_that_cannot_be_a_header_is_refused_when_configuration_is_read(key: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"APIMP_API_KEY": key})

    assert "APIMP_API_KEY" in str(refused.value)
    assert "abc" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["ftp://user:s3cret@example.com", "api.apimp.ai", "https://", "http://user:s3cret@"]
)
def test_a_base_url_that_is_not_http_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"APIMP_BASE_URL": url})

    assert "APIMP_BASE_URL" in str(refused.value)
    assert "s3cret" not in str(refused.value)


async def test_credentials_in_the_base_url_are_never_echoed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = fast_settings(f"http://gateway-user:s3cret-pass@127.0.0.1:{port}", tmp_path / "videos")
    caplog.set_level(logging.DEBUG)
    async with Client(build_server(settings)) as client:
        submitted = await submit_input(client)
        status = await client.call_tool("get_status", {"task_id": "task_abc"})

    assert submitted.is_error
    assert status.is_error
    assert f"127.0.0.1:{port}" in text_of(submitted)
    for text in (text_of(submitted), text_of(status), caplog.text):
        assert "s3cret-pass" not in text


async def test_a_journal_failure_shown_to_a_caller_names_no_server_path(
    upstream: Upstream, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the journal's folder should be")
    settings = fast_settings(
        upstream.base_url, tmp_path / "videos", journal_path=str(blocker / "journal.sqlite3")
    )
    async with Client(build_server(settings)) as client:
        result = await submit_input(client)

    assert result.is_error
    assert "nothing was" in text_of(result)  # charged, or sent: whichever journal read or write failed first
    assert str(tmp_path) not in text_of(result)
    assert upstream.simulator.requests_to("/api/generate/submit") == []
