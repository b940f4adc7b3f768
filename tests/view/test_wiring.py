"""The player view at the protocol level: what a host with MCP Apps sees, and what one without does not.

Driven through the SDK's Client in memory (both protocol eras) and over stdio against the installed
console script, with the simulator on loopback as APIMP.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, advertise
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, TextResourceContents, Tool

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID
from apimp_video_mcp.config import Settings
from apimp_video_mcp.models import TASK_ID_PATTERN, TaskFile, TaskSnapshot
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import sample_video
from apimp_video_mcp.store import SqliteTaskStore
from apimp_video_mcp.view.wiring import PLAYER_URI, POLL_TOOL
from tests.support import Mode, Upstream, fast_settings, structured, text_of
from tests.support.processes import console_script, server_environment

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"
PROMPT = "a heron taking off from a misty lake"
LINKED = {"submit_video", "get_status", "wait_for_video"}
MODEL_TOOLS = {"submit_video", "estimate_cost", "get_status", "wait_for_video", "list_tasks", "upload_image"}


def apps_extension() -> ClientExtension:
    """What an MCP Apps host advertises."""
    return advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def ui_of(tool: Tool) -> dict[str, Any] | None:
    ui = (tool.meta or {}).get("ui")
    assert ui is None or isinstance(ui, dict)
    return ui


def visible_to_the_model(tools: list[Tool]) -> set[str]:
    """What a host that honours `visibility` puts in the model's tool list."""
    return {tool.name for tool in tools if "model" in ((ui_of(tool) or {}).get("visibility") or ["model"])}


@pytest.fixture
async def apps_client(settings: Settings, mode: Mode) -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode, extensions=[apps_extension()]) as connected:
        yield connected


async def submit(client: Client) -> str:
    result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": PROMPT}})
    task_id = structured(result)["task_id"]
    assert isinstance(task_id, str)
    return task_id


async def read_player(client: Client) -> TextResourceContents:
    [content] = (await client.read_resource(PLAYER_URI)).contents
    assert isinstance(content, TextResourceContents)
    return content


def declared_origins(content: TextResourceContents) -> list[str]:
    origins = (content.meta or {})["ui"]["csp"]["resourceDomains"]
    assert isinstance(origins, list)
    return origins


# --- A host with MCP Apps ------------------------------------------------------------------------


@pytest.mark.each_era
async def test_the_server_advertises_mcp_apps_and_links_the_video_tools_to_the_player(
    apps_client: Client, mode: Mode
) -> None:
    tools = (await apps_client.list_tools()).tools

    if mode == "auto":
        # The 2025-11-25 ServerCapabilities has no `extensions` field, so the SDK leaves it out of a
        # handshake-era initialize result; hosts there go by the tools' _meta.ui, which is present.
        assert EXTENSION_ID in (apps_client.server_capabilities.extensions or {})
    linked = {tool.name: ui_of(tool) for tool in tools if tool.name in LINKED}
    assert linked == {name: {"resourceUri": PLAYER_URI} for name in LINKED}
    assert all(ui_of(tool) is None for tool in tools if tool.name in {"list_tasks", "upload_image"})


@pytest.mark.each_era
async def test_the_poll_tool_is_for_the_view_only_and_the_view_can_call_it(
    apps_client: Client, upstream: Upstream
) -> None:
    tools = (await apps_client.list_tools()).tools
    [poll] = [tool for tool in tools if tool.name == POLL_TOOL]
    task_id = await submit(apps_client)

    result = await apps_client.call_tool(POLL_TOOL, {"task_id": task_id})

    assert ui_of(poll) == {"resourceUri": PLAYER_URI, "visibility": ["app"]}
    assert visible_to_the_model(tools) == MODEL_TOOLS
    assert poll.input_schema["properties"]["task_id"]["pattern"] == TASK_ID_PATTERN
    [get_status] = [tool for tool in tools if tool.name == "get_status"]
    assert get_status.input_schema["properties"]["task_id"]["pattern"] == TASK_ID_PATTERN
    status = structured(result)
    assert status["task_id"] == task_id
    assert status["status"] in ("not_started", "running")
    assert status["model"] == VEO
    assert status["prompt"] == PROMPT
    assert status["estimate"] is None
    assert 0 < status["next_poll_seconds"] <= defaults.UI_POLL_MAX_INTERVAL_SECONDS
    assert task_id in text_of(result)


async def test_polling_an_unknown_task_is_an_error_the_view_can_show(apps_client: Client) -> None:
    result = await apps_client.call_tool(POLL_TOOL, {"task_id": "task_doesnotexist"})

    assert result.is_error
    assert "does not know task 'task_doesnotexist'" in text_of(result)


async def test_the_player_is_a_self_contained_mcp_app_that_declares_the_media_origins(
    upstream: Upstream, tmp_path: Path
) -> None:
    settings = fast_settings(
        upstream.base_url, tmp_path / "videos", ui_media_domains=("https://cdn.example.com",)
    )
    async with Client(build_server(settings), extensions=[apps_extension()]) as client:
        [listed] = [r for r in (await client.list_resources()).resources if str(r.uri) == PLAYER_URI]
        content = await read_player(client)

    assert listed.mime_type == APP_MIME_TYPE
    assert content.mime_type == APP_MIME_TYPE
    assert declared_origins(content) == sorted([upstream.base_url, "https://cdn.example.com"])
    assert (content.meta or {})["ui"]["prefersBorder"] is True
    html = content.text
    assert "ui/initialize" in html
    assert POLL_TOOL in html
    for outside in ("<script src", "<link", "@import", "url(http", 'src="http'):
        assert outside not in html, f"the page must load nothing from elsewhere ({outside})"


async def test_a_result_origin_seen_in_the_journal_is_declared_when_the_page_is_next_read(
    apps_client: Client, settings: Settings
) -> None:
    before = declared_origins(await read_player(apps_client))
    journal = await SqliteTaskStore.open(settings.journal_path)  # the server's journal, from outside
    try:
        await journal.record_status(
            TaskSnapshot(
                task_id="task_elsewhere",
                status="finished",
                upstream_status="finished",
                files=[TaskFile(file_url="https://videos.cdn.example.org/a/b.mp4?sig=1", file_type="image")],
            ),
            principal=LOCAL_PRINCIPAL_ID,
        )
    finally:
        await journal.close()

    after = declared_origins(await read_player(apps_client))

    assert "https://videos.cdn.example.org" not in before
    assert "https://videos.cdn.example.org" in after


@pytest.mark.each_era
async def test_the_video_resource_serves_the_saved_copy_as_an_mp4_blob(
    apps_client: Client, upstream: Upstream
) -> None:
    task_id = await submit(apps_client)
    upstream.simulator.finish_now(task_id)
    waited = structured(await apps_client.call_tool("wait_for_video", {"task_id": task_id}))

    [content] = (await apps_client.read_resource(f"apimp://videos/{task_id}")).contents
    status = structured(await apps_client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert isinstance(content, BlobResourceContents)
    assert content.mime_type == "video/mp4"
    assert base64.b64decode(content.blob) == sample_video()
    assert status["video_resource"] == f"apimp://videos/{task_id}"
    assert [copy["path"] for copy in status["saved_videos"]] == [waited["saved_videos"][0]["path"]]
    assert status["next_poll_seconds"] is None


async def test_with_no_copy_yet_the_video_resource_saves_one_first(
    apps_client: Client, upstream: Upstream
) -> None:
    task_id = await submit(apps_client)
    upstream.simulator.finish_now(task_id)
    await apps_client.call_tool("get_status", {"task_id": task_id})  # finished, nothing saved

    [content] = (await apps_client.read_resource(f"apimp://videos/{task_id}")).contents
    status = structured(await apps_client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert isinstance(content, BlobResourceContents)
    assert base64.b64decode(content.blob) == sample_video()
    [copy] = status["saved_videos"]
    assert Path(copy["path"]).read_bytes() == sample_video()


async def test_an_expired_link_with_no_copy_is_an_error_that_says_expired(
    apps_client: Client, upstream: Upstream
) -> None:
    task_id = await submit(apps_client)
    upstream.simulator.finish_now(task_id)
    await apps_client.call_tool("get_status", {"task_id": task_id})
    upstream.simulator.expire_files()

    with pytest.raises(MCPError, match=r"\(expired\).*410"):
        await apps_client.read_resource(f"apimp://videos/{task_id}")


async def test_a_video_over_the_cap_is_not_offered_to_the_view(upstream: Upstream, tmp_path: Path) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", ui_video_max_bytes=1024)
    async with Client(build_server(settings), extensions=[apps_extension()]) as apps_client:
        task_id = await submit(apps_client)
        upstream.simulator.finish_now(task_id)
        await apps_client.call_tool("wait_for_video", {"task_id": task_id})

        status = structured(await apps_client.call_tool(POLL_TOOL, {"task_id": task_id}))

        assert status["video_resource"] is None
        assert "open it in the browser" in status["video_resource_note"]
        with pytest.raises(MCPError, match=r"\(too_large\)"):
            await apps_client.read_resource(f"apimp://videos/{task_id}")


@pytest.mark.parametrize("uri", ["apimp://videos/task_unknown", "apimp://videos/..%2Fetc"])
async def test_the_video_resource_refuses_unknown_and_malformed_task_ids(
    apps_client: Client, uri: str
) -> None:
    with pytest.raises(MCPError):
        await apps_client.read_resource(uri)


async def test_a_view_polling_beside_a_fresh_status_costs_no_extra_request(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.task_duration_seconds = 60.0
    settings = fast_settings(upstream.base_url, tmp_path / "videos", ui_poll_interval_seconds=30.0)
    async with Client(build_server(settings), extensions=[apps_extension()]) as client:
        task_id = await submit(client)
        await client.call_tool("get_status", {"task_id": task_id})  # as a wait's poller would
        asked = len(upstream.simulator.requests_to("/api/generate/status"))
        status = structured(await client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert len(upstream.simulator.requests_to("/api/generate/status")) == asked
    assert status["status"] in ("not_started", "running")


async def test_a_failing_apimp_gives_the_view_the_last_known_status(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.task_duration_seconds = 60.0
    # A short interval: the journal written by the submit is not fresh enough to answer from.
    settings = fast_settings(upstream.base_url, tmp_path / "videos", ui_poll_interval_seconds=0.01)
    async with Client(build_server(settings), extensions=[apps_extension()]) as client:
        task_id = await submit(client)
        upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=503, times=50)
        with anyio.fail_after(10):
            result = await client.call_tool(POLL_TOOL, {"task_id": task_id})

    status = structured(result)
    assert status["status"] == "not_started"
    assert "503" in status["last_error"]
    assert status["next_poll_seconds"] is not None


async def test_the_estimate_comes_from_earlier_tasks_of_the_same_model(
    apps_client: Client, upstream: Upstream, settings: Settings
) -> None:
    journal = await SqliteTaskStore.open(settings.journal_path)
    try:
        for index, seconds in enumerate((40, 50, 60)):
            entry_id = await journal.record_submission(
                VEO, {"model": VEO, "input": {"prompt": "x"}}, principal=LOCAL_PRINCIPAL_ID
            )
            done = TaskSnapshot(
                task_id=f"task_earlier_{index}",
                status="finished",
                upstream_status="finished",
                created_time="2026-03-01T10:00:00",
                finished_time=f"2026-03-01T10:00:{seconds}" if seconds < 60 else "2026-03-01T10:01:00",
            )
            await journal.record_accepted(entry_id, done)
    finally:
        await journal.close()
    upstream.simulator.task_duration_seconds = 60.0
    task_id = await submit(apps_client)

    status = structured(await apps_client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert status["estimate"]["typical_seconds"] == 50.0
    assert status["estimate"]["samples"] == 3
    assert 45.0 < status["estimate"]["remaining_seconds"] <= 50.0


# --- A host without MCP Apps, and APIMP_UI=off ---------------------------------------------------


async def test_a_client_without_the_extension_sees_the_lists_it_saw_before(client: Client) -> None:
    tools = (await client.list_tools()).tools
    resources = (await client.list_resources()).resources
    templates = (await client.list_resource_templates()).resource_templates

    assert {tool.name for tool in tools} == MODEL_TOOLS
    assert {str(resource.uri) for resource in resources} == {"apimp://tasks", "apimp://models"}
    assert {template.uri_template for template in templates} == {"apimp://tasks/{task_id}"}


@pytest.mark.each_era
async def test_tool_results_are_the_same_with_the_view_on_or_off(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    answers: list[list[tuple[str, Any]]] = []
    for ui_enabled, extensions in ((True, [apps_extension()]), (False, None)):
        settings = fast_settings(upstream.base_url, tmp_path / f"videos-{ui_enabled}", ui_enabled=ui_enabled)
        async with Client(build_server(settings), mode=mode, extensions=extensions) as client:
            task_id = await submit(client)
            upstream.simulator.finish_now(task_id)
            calls = [
                await client.call_tool("get_status", {"task_id": task_id}),
                await client.call_tool("wait_for_video", {"task_id": task_id}),
            ]
        answers.append(
            [
                (_masked(text_of(call), task_id), _masked(repr(_without_times(structured(call))), task_id))
                for call in calls
            ]
        )

    assert answers[0] == answers[1]


def _masked(text: str, task_id: str) -> str:
    """What differs between two runs by nature (ids, signed tokens, folders) replaced by placeholders."""
    text = re.sub(r"token=[0-9a-f]+", "token=T", text.replace(task_id, "TASK"))
    return text.replace("videos-True", "V").replace("videos-False", "V")


def _without_times(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in data.items()
        if key not in ("created_time", "finished_time", "waited_seconds")
    }


@pytest.mark.each_era
async def test_with_apimp_ui_off_there_is_no_ui_at_all(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", ui_enabled=False)
    async with Client(build_server(settings), mode=mode, extensions=[apps_extension()]) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        extensions = client.server_capabilities.extensions or {}

    assert {tool.name for tool in tools} == MODEL_TOOLS
    assert all(tool.meta is None or "ui" not in tool.meta for tool in tools)
    assert not any(str(resource.uri).startswith("ui://") for resource in resources)
    assert {template.uri_template for template in templates} == {"apimp://tasks/{task_id}"}
    assert EXTENSION_ID not in extensions


# --- Over stdio, as a desktop host runs it -----------------------------------------------------------


# Spawning the server costs a second or more, so only the combinations that matter: the player in
# both eras, and APIMP_UI=off in the handshake era most desktop hosts speak.
@pytest.mark.parametrize(("mode", "ui"), [("auto", "on"), ("legacy", "on"), ("legacy", "off")])
async def test_over_stdio_a_host_with_the_extension_gets_the_player_unless_it_is_off(
    upstream: Upstream, tmp_path: Path, mode: Mode, ui: str
) -> None:
    environment = {**server_environment(upstream, tmp_path / "videos"), "APIMP_UI": ui}
    parameters = StdioServerParameters(command=console_script(), args=[], env=environment)
    extensions = [apps_extension()]
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(30):
        async with Client(
            stdio_client(parameters, errlog=errlog), mode=mode, extensions=extensions
        ) as client:
            tools = {tool.name: ui_of(tool) for tool in (await client.list_tools()).tools}
            if ui == "off":
                assert tools == dict.fromkeys(MODEL_TOOLS)
                return
            task_id = await submit(client)
            player = await read_player(client)
            polled = structured(await client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert tools[POLL_TOOL] == {"resourceUri": PLAYER_URI, "visibility": ["app"]}
    assert all(tools[name] == {"resourceUri": PLAYER_URI} for name in LINKED)
    assert player.mime_type == APP_MIME_TYPE
    assert upstream.base_url in declared_origins(player)
    assert polled["task_id"] == task_id
    assert polled["prompt"] == PROMPT
