"""The tools, driven through the SDK's in-memory Client against the simulator on loopback."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint
from mcp import Client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from tests.support import Mode, Upstream, fast_settings, structured, text_of
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"


async def submit(client: Client, prompt: str = "a red fox running through snow", **input_: Any) -> str:
    result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": prompt, **input_}})
    task_id = structured(result)["task_id"]
    assert isinstance(task_id, str)
    return task_id


@pytest.mark.each_era
async def test_the_upstream_receives_exactly_the_tool_arguments_with_the_bearer_key(
    client: Client, upstream: Upstream
) -> None:
    arguments = {
        "model": "veo-3.1-generate-preview",
        "input": {
            "prompt": "a lighthouse at dusk, slow dolly in",
            "size": "1280x720",
            "duration": 8,
            "image": "https://example.com/first-frame.png?sig=abc",
            "metadata": {
                "negativePrompt": "text",
                "seed": 42,
                "generateAudio": True,
                "resolution": "4k",
                "customVendorKey": {"nested": [1, 2]},
            },
        },
    }

    result = await client.call_tool("submit_video", arguments)

    data = structured(result)
    assert data["task_id"].startswith("task_")
    assert data["status"] == "not_started"
    [sent] = upstream.simulator.requests_to("/api/generate/submit")
    assert sent.json() == arguments
    assert sent.headers["authorization"] == f"Bearer {SIMULATOR_API_KEY}"
    assert data["task_id"] in text_of(result)


async def test_submit_reports_the_format_the_documented_size_rule_yields(client: Client) -> None:
    result = await client.call_tool(
        "submit_video", {"model": VEO, "input": {"prompt": "city timelapse", "size": "1920x1080"}}
    )

    effective = structured(result)["effective_format"]
    assert effective["aspect_ratio"] == "16:9"
    assert effective["resolution"] == "720p"
    assert effective["resolution_source"] == "size"
    assert effective["duration_seconds"] == 8
    assert "1920x1080 yields 720p" in effective["notes"][0]
    assert "720p" in text_of(result)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"model": "veo-4", "input": {"prompt": "x"}}, ["model", "veo-3.0-generate-001", VEO]),
        ({"model": VEO, "input": {"prompt": "   "}}, ["input.prompt", "blank"]),
        ({"model": VEO, "input": {}}, ["input.prompt", "required"]),
        ({"model": VEO, "input": {"prompt": "x", "fps": 24}}, ["input.fps", "not permitted"]),
        ({"model": VEO, "input": {"prompt": "x", "size": "wide"}}, ["input.size"]),
        ({"model": VEO, "input": {"prompt": "x", "duration": 5}}, ["input.duration", "4", "6", "8"]),
        (
            {"model": VEO, "input": {"prompt": "x", "images": ["https://a/1.png", "https://a/2.png"]}},
            ["images"],
        ),
        ({"model": VEO, "input": {"prompt": "x", "image": "not a url"}}, ["input.image"]),
        (
            {"model": VEO, "input": {"prompt": "x", "metadata": {"aspectRatio": "4:3"}}},
            ["input.metadata.aspectRatio", "16:9", "9:16"],
        ),
        (
            {"model": "veo-3.0-generate-001", "input": {"prompt": "x", "metadata": {"resolution": "4k"}}},
            ["input.metadata.resolution", "veo-3.1"],
        ),
        (
            {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "x", "size": "3840x3840"}},
            ["input.size", "4k"],
        ),
        ({"model": VEO, "input": {"prompt": "x", "duration": 12}}, ["input.duration", "4, 6 or 8"]),
        ({"model": VEO, "input": {"prompt": "x", "seconds": 12}}, ["input.seconds", "4", "6", "8"]),
    ],
)
async def test_invalid_input_names_the_field_and_never_reaches_the_upstream(
    client: Client, upstream: Upstream, arguments: dict[str, Any], named: list[str]
) -> None:
    result = await client.call_tool("submit_video", arguments)

    assert result.is_error
    message = text_of(result)
    for word in named:
        assert word in message
    assert upstream.simulator.requests_to("/api/generate/submit") == []


@pytest.mark.each_era
async def test_an_upstream_400_reaches_the_model_verbatim(client: Client, upstream: Upstream) -> None:
    upstream.simulator.inject_fault(
        path_prefix="/api/generate/submit",
        status=400,
        body={
            "code": 400,
            "error": {"message": "prompt violates content policy", "type": "invalid_request_error"},
        },
    )

    result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "something"}})

    assert result.is_error
    assert "APIMP rejected the request: prompt violates content policy" in text_of(result)


@pytest.mark.each_era
async def test_a_wrong_key_is_reported_without_echoing_it(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    wrong_key = "sk-wrong-0123456789abcdef"
    settings = fast_settings(upstream.base_url, tmp_path, api_key=wrong_key)
    async with Client(build_server(settings), mode=mode) as client:
        result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "x"}})

    assert result.is_error
    assert "APIMP_API_KEY" in text_of(result)
    assert "401" in text_of(result)
    assert wrong_key not in text_of(result)


async def test_a_missing_key_names_the_variable_and_sends_nothing(upstream: Upstream, tmp_path: Path) -> None:
    settings = fast_settings(upstream.base_url, tmp_path, api_key=None)
    async with Client(build_server(settings)) as client:
        listed = await client.list_tools()
        result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "x"}})

    assert {tool.name for tool in listed.tools} >= {
        "submit_video",
        "get_status",
        "wait_for_video",
        "list_tasks",
    }
    assert result.is_error
    assert "APIMP_API_KEY is not set" in text_of(result)
    assert upstream.simulator.received == []


async def test_an_unknown_task_id_says_so(client: Client) -> None:
    result = await client.call_tool("get_status", {"task_id": "task_doesnotexist"})

    assert result.is_error
    assert "does not know task 'task_doesnotexist'" in text_of(result)
    assert "task not found" in text_of(result)


async def test_another_keys_task_is_refused_with_403(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.api_keys = frozenset({SIMULATOR_API_KEY, "sk-other"})
    owner = fast_settings(upstream.base_url, tmp_path)
    other = fast_settings(upstream.base_url, tmp_path, api_key="sk-other")
    async with Client(build_server(owner)) as client:
        task_id = await submit(client)
    async with Client(build_server(other)) as client:
        result = await client.call_tool("get_status", {"task_id": task_id})

    assert result.is_error
    assert "403" in text_of(result)
    assert "another API key" in text_of(result)


async def test_a_task_id_that_could_escape_the_status_path_is_refused(
    client: Client, upstream: Upstream
) -> None:
    result = await client.call_tool("get_status", {"task_id": "../submit"})

    assert result.is_error
    assert "task_id" in text_of(result)
    assert upstream.simulator.received == []


async def test_get_status_reports_progress_then_the_video_url(client: Client, upstream: Upstream) -> None:
    upstream.simulator.task_duration_seconds = 60.0  # it ends when the test says, not by the clock
    task_id = await submit(client)

    first = structured(await client.call_tool("get_status", {"task_id": task_id}))
    upstream.simulator.finish_now(task_id)
    # Calls within a second share one answer; refresh asks again at once.
    done = structured(await client.call_tool("get_status", {"task_id": task_id, "refresh": True}))

    assert first["status"] in ("not_started", "running")
    assert first["video_urls"] == []
    assert done["status"] == "finished"
    assert done["progress"] == 100
    [url] = done["video_urls"]
    assert url.startswith(upstream.base_url)
    assert ".mp4?" in url


@pytest.mark.each_era
async def test_wait_for_video_reports_strictly_increasing_progress_and_saves_the_video(
    client: Client, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.task_duration_seconds = 60.0  # it ends when the test has seen it run
    task_id = await submit(client)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if len(seen) == 3:
            upstream.simulator.finish_now(task_id)

    with anyio.fail_after(10):
        result = await client.call_tool("wait_for_video", {"task_id": task_id}, progress_callback=on_progress)

    data = structured(result)
    assert data["status"] == "finished"
    assert data["done"] is True
    assert data["timed_out"] is False
    values = [progress for progress, _, _ in seen]
    assert len(values) >= 3
    assert all(later > earlier for earlier, later in itertools.pairwise(values))
    assert values[-1] == 100
    assert all(0 <= value <= 100 for value in values)
    assert all(total == 100 and message for _, total, message in seen)
    [saved] = data["saved_videos"]
    path = Path(saved["path"])
    assert path == tmp_path / "videos" / f"{task_id}.mp4"
    assert path.read_bytes()[4:8] == b"ftyp"
    assert saved["size_bytes"] == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no partial files are left behind"
    assert str(path) in text_of(result)


async def test_a_timeout_returns_the_task_so_the_agent_can_wait_again(
    client: Client, upstream: Upstream
) -> None:
    upstream.simulator.task_duration_seconds = 60.0
    task_id = await submit(client)

    with anyio.fail_after(10):
        result = await client.call_tool("wait_for_video", {"task_id": task_id, "timeout_seconds": 0.3})

    assert not result.is_error
    data = structured(result)
    assert data["timed_out"] is True
    assert data["done"] is False
    assert data["status"] in ("not_started", "running")
    assert "wait_for_video again" in text_of(result)


async def test_a_failed_task_reports_its_error_message(client: Client, upstream: Upstream) -> None:
    upstream.simulator.fail_next_tasks(1, "The prompt was blocked by the safety filter.")
    task_id = await submit(client)

    with anyio.fail_after(10):
        result = await client.call_tool("wait_for_video", {"task_id": task_id})

    data = structured(result)
    assert data["status"] == "failed"
    assert data["error_message"] == "The prompt was blocked by the safety filter."
    assert data["video_urls"] == []
    assert data["saved_videos"] == []
    assert "blocked by the safety filter" in text_of(result)


async def test_rate_limits_and_server_errors_on_status_queries_are_retried(
    client: Client, upstream: Upstream
) -> None:
    task_id = await submit(client)
    upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=429, retry_after="0", times=2)
    upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=502, times=1)

    result = await client.call_tool("get_status", {"task_id": task_id})

    assert structured(result)["task_id"] == task_id
    assert len(upstream.simulator.requests_to("/api/generate/status")) == 4


async def test_a_submit_is_not_retried_after_a_server_error(client: Client, upstream: Upstream) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/submit", status=502)

    result = await client.call_tool("submit_video", {"model": VEO, "input": {"prompt": "x"}})

    assert result.is_error
    assert "NOT resubmitted" in text_of(result)
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1


async def test_an_expired_video_url_keeps_the_result_and_explains(client: Client, upstream: Upstream) -> None:
    task_id = await submit(client)
    upstream.simulator.finish_now(task_id)
    upstream.simulator.expire_files()

    result = await client.call_tool("wait_for_video", {"task_id": task_id})

    data = structured(result)
    assert data["status"] == "finished"
    assert len(data["video_urls"]) == 1
    assert data["saved_videos"] == []
    assert "expired" in data["download_error"]


@pytest.mark.each_era
async def test_cancelling_a_wait_stops_polling(settings: Settings, upstream: Upstream, mode: Mode) -> None:
    upstream.simulator.task_duration_seconds = 60.0
    clock = FakeClock()  # the server polls on it: time passes only as the test lets it
    polls = len(upstream.simulator.requests_to("/api/generate/status"))

    async def let_time_pass(seconds: float) -> None:
        """Move the server's clock on in poll-sized steps, letting loopback requests finish between."""
        for _ in range(round(seconds / 0.05)):
            await clock.run_for(0.05)
            for _ in range(20):
                await checkpoint()

    async with Client(build_server(settings, clock=clock), mode=mode) as client:
        task_id = await submit(client)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:

                async def wait() -> None:
                    await client.call_tool("wait_for_video", {"task_id": task_id})

                group.start_soon(wait)
                while len(upstream.simulator.requests_to("/api/generate/status")) < polls + 2:
                    await let_time_pass(0.05)
                group.cancel_scope.cancel()
            count_at_cancel = len(upstream.simulator.requests_to("/api/generate/status"))
            await let_time_pass(5.0)  # a hundred poll intervals: any surviving poller would show up

    assert len(upstream.simulator.requests_to("/api/generate/status")) <= count_at_cancel + 1


async def test_the_api_key_never_appears_in_results_or_logs(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-simulator"
    caplog.set_level(logging.DEBUG)
    settings = fast_settings(upstream.base_url, tmp_path)
    upstream.simulator.inject_fault(path_prefix="/api/generate/status", status=503, times=1)
    async with Client(build_server(settings)) as client:
        task_id = await submit(client)
        outputs = [await client.call_tool("get_status", {"task_id": task_id})]
        upstream.simulator.finish_now(task_id)
        outputs.append(await client.call_tool("wait_for_video", {"task_id": task_id}))
        outputs.append(await client.call_tool("get_status", {"task_id": "task_missing"}))
        upstream.simulator.api_keys = frozenset({"sk-rotated"})
        outputs.append(await client.call_tool("get_status", {"task_id": task_id, "refresh": True}))

    assert outputs[-1].is_error
    assert secret not in repr(settings)
    for output in outputs:
        assert secret not in output.model_dump_json()
    assert caplog.records, "the test must actually capture log lines"
    for record in caplog.records:
        assert secret not in record.getMessage()
