"""APIMP_AUTH=keys over real streamable HTTP: operator-issued keys, isolation, limits, reloads.

Every test drives the SDK's real Client (or raw HTTP, for what a client library hides) against
the server's own HTTP app on loopback, with the APIMP simulator behind it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from apimp_video_mcp.access.keys import KeyEntry, add_key, key_hash, revoke_principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.server.auth import build_auth
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from tests.support import Mode, Upstream, fast_settings, structured, text_of
from tests.support.http import client_with, initialize_request, serving

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a paper boat in the rain"}}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


@pytest.fixture
def team_settings(upstream: Upstream, tmp_path: Path, keys_file: Path) -> Settings:
    return fast_settings(upstream.base_url, tmp_path / "videos", auth="keys", keys_file=keys_file)


@pytest.fixture
def alice(keys_file: Path) -> str:
    return add_key(keys_file, KeyEntry(principal="alice"))


@pytest.fixture
def bob(keys_file: Path) -> str:
    return add_key(keys_file, KeyEntry(principal="bob"))


@pytest.fixture
async def url(team_settings: Settings, alice: str, bob: str) -> AsyncIterator[str]:
    server = build_server(
        team_settings,
        transport="streamable-http",
        auth=build_auth(team_settings, base_url="http://127.0.0.1"),
    )
    async with serving(server, team_settings) as served:
        yield served


async def test_no_key_or_a_wrong_key_gets_401_with_a_bearer_challenge(url: str) -> None:
    async with httpx2.AsyncClient() as http:
        missing = await http.post(url, **initialize_request())
        wrong = await http.post(url, **initialize_request("amk_not-a-key-anyone-was-given"))
        other_scheme = await http.post(
            url, **initialize_request(None, authorization="Basic YWxpY2U6cGFzcw==")
        )

    for response in (missing, wrong, other_scheme):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert response.json()["error"] == "invalid_token"


async def test_a_valid_key_gets_a_session(url: str, alice: str, mode: Mode) -> None:
    async with client_with(url, alice, mode=mode) as client:
        tools = await client.list_tools()

    assert "submit_video" in {tool.name for tool in tools.tools}


async def test_two_principals_cannot_see_wait_on_read_or_play_each_others_tasks(
    url: str, alice: str, bob: str, upstream: Upstream, mode: Mode
) -> None:
    with anyio.fail_after(30):
        async with client_with(url, alice, mode=mode) as as_alice:
            task_id = structured(await as_alice.call_tool("submit_video", SUBMIT))["task_id"]
            waited = structured(await as_alice.call_tool("wait_for_video", {"task_id": task_id}))
            own_listing = structured(await as_alice.call_tool("list_tasks", {}))
        statuses_before = len(upstream.simulator.requests_to("/api/generate/status"))

        async with client_with(url, bob, mode=mode) as as_bob:
            answers = {
                tool: text_of(await as_bob.call_tool(tool, {"task_id": task_id}))
                for tool in ("get_status", "wait_for_video", "poll_video_status")
            }
            unknown = {
                tool: text_of(await as_bob.call_tool(tool, {"task_id": "task_neverexisted"}))
                for tool in ("get_status", "wait_for_video", "poll_video_status")
            }
            listing = structured(await as_bob.call_tool("list_tasks", {}))
            tasks_resource = await as_bob.read_resource("apimp://tasks")
            refusals = []
            for uri in (f"apimp://tasks/{task_id}", f"apimp://videos/{task_id}"):
                with pytest.raises(MCPError) as refused:
                    await as_bob.read_resource(uri)
                refusals.append(str(refused.value).replace(task_id, "ID"))
            unknown_refusals = []
            for uri in ("apimp://tasks/task_neverexisted", "apimp://videos/task_neverexisted"):
                with pytest.raises(MCPError) as refused:
                    await as_bob.read_resource(uri)
                unknown_refusals.append(str(refused.value).replace("task_neverexisted", "ID"))

    assert waited["status"] == "finished"
    assert [task["task_id"] for task in own_listing["tasks"]] == [task_id]
    for tool, answer in answers.items():
        assert answer.replace(task_id, "ID") == unknown[tool].replace("task_neverexisted", "ID"), tool
        assert "a paper boat" not in answer
    assert listing["tasks"] == []
    assert json.loads(tasks_resource.contents[0].text)["tasks"] == []  # type: ignore[union-attr]
    assert refusals == unknown_refusals
    assert len(upstream.simulator.requests_to("/api/generate/status")) == statuses_before, "APIMP never asked"


async def test_each_principals_videos_land_in_its_own_folder(
    url: str, alice: str, team_settings: Settings
) -> None:
    with anyio.fail_after(30):
        async with client_with(url, alice) as client:
            task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
            waited = structured(await client.call_tool("wait_for_video", {"task_id": task_id}))

    saved = Path(waited["saved_videos"][0]["path"])
    assert saved.parent == team_settings.download_dir / "key-alice"
    assert saved.is_file()


async def test_keys_are_added_and_revoked_without_a_restart(url: str, keys_file: Path) -> None:
    carol = add_key(keys_file, KeyEntry(principal="carol"))
    async with client_with(url, carol) as client:
        await client.list_tools()

    revoke_principal(keys_file, "carol")
    async with httpx2.AsyncClient() as http:
        response = await http.post(url, **initialize_request(carol))

    assert response.status_code == 401


async def test_a_broken_keys_file_keeps_the_keys_read_before(url: str, alice: str, keys_file: Path) -> None:
    keys_file.write_text("{ not json", encoding="utf-8")

    async with client_with(url, alice) as client:
        await client.list_tools()


async def test_the_file_holds_only_hashes_and_is_private(keys_file: Path, alice: str) -> None:
    content = keys_file.read_text(encoding="utf-8")

    assert alice not in content
    assert key_hash(alice) in content
    assert keys_file.stat().st_mode & 0o077 == 0


async def test_a_keys_own_limit_refuses_with_the_documented_message_and_sends_nothing(
    url: str, keys_file: Path, upstream: Upstream
) -> None:
    limited = add_key(keys_file, KeyEntry(principal="dana", max_submits_per_hour=1))
    async with client_with(url, limited) as client:
        structured(await client.call_tool("submit_video", SUBMIT))
        refused = await client.call_tool("submit_video", SUBMIT)

    assert refused.is_error
    assert "limit of 1 submits per hour" in text_of(refused)
    assert "nothing was submitted or charged" in text_of(refused)
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1


async def test_a_key_with_its_own_apimp_key_sends_it_and_only_it(
    url: str, keys_file: Path, upstream: Upstream, alice: str
) -> None:
    upstream.simulator.api_keys = frozenset({SIMULATOR_API_KEY, "sk-erins-own"})
    erin = add_key(keys_file, KeyEntry.model_validate({"principal": "erin", "apimp_key": "sk-erins-own"}))
    async with client_with(url, erin) as as_erin, client_with(url, alice) as as_alice:
        erins = structured(await as_erin.call_tool("submit_video", SUBMIT))["task_id"]
        alices = structured(await as_alice.call_tool("submit_video", SUBMIT))["task_id"]

    assert upstream.simulator.tasks[erins].api_key == "sk-erins-own"
    assert upstream.simulator.tasks[alices].api_key == SIMULATOR_API_KEY


async def test_uploads_are_off_for_a_key_without_a_mapped_folder(
    url: str, alice: str, tmp_path: Path
) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    async with client_with(url, alice) as client:
        refused = await client.call_tool("upload_image", {"path": str(image)})

    assert refused.is_error
    assert "allowed no folder for your key" in text_of(refused)


async def test_no_key_appears_in_any_log_result_or_journal_row(
    url: str, alice: str, bob: str, team_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    with anyio.fail_after(30):
        async with client_with(url, alice) as client:
            task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
            for tool, arguments in [
                ("wait_for_video", {"task_id": task_id}),
                ("get_status", {"task_id": "task_unknown"}),
                ("list_tasks", {}),
            ]:
                outputs.append(str((await client.call_tool(tool, arguments)).model_dump()))
        async with httpx2.AsyncClient() as http:
            outputs.append((await http.post(url, **initialize_request(bob + "x"))).text)

    journal = b"".join(
        path.read_bytes() for path in Path(team_settings.journal_path).parent.glob("*journal*")
    )
    assert task_id.encode() in journal, "the test must read the journal the server wrote"
    for secret in (alice, bob, SIMULATOR_API_KEY):
        assert secret not in caplog.text
        assert all(secret not in output for output in outputs)
        assert secret.encode() not in journal


async def test_the_access_log_names_principal_tool_task_and_outcome_but_no_key(
    upstream: Upstream, tmp_path: Path, keys_file: Path, alice: str
) -> None:
    log = tmp_path / "access.jsonl"
    settings = fast_settings(
        upstream.base_url, tmp_path / "videos", auth="keys", keys_file=keys_file, access_log=str(log)
    )
    server = build_server(
        settings, transport="streamable-http", auth=build_auth(settings, base_url="http://x")
    )
    async with serving(server, settings) as served, client_with(served, alice) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        await client.call_tool("get_status", {"task_id": task_id})
        await client.call_tool("get_status", {"task_id": "task_unknown"})

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["principal"], line["tool"], line["task_id"], line["outcome"]) for line in lines] == [
        ("key:alice", "submit_video", task_id, "ok"),
        ("key:alice", "get_status", task_id, "ok"),
        ("key:alice", "get_status", "task_unknown", "tool_error"),
    ]
    assert all(isinstance(line["latency_ms"], float) for line in lines)
    assert alice not in log.read_text()
