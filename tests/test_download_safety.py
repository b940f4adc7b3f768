"""Downloads cannot be turned against the machine: a hostile upstream, through the real client.

The upstream is the simulator, told to answer a status query with result URLs of our choosing;
the result files come from a small hostile app on loopback (trickling bodies, web pages posing as
videos, redirects, fifty files). Both are allowed hosts; `localhost` and address literals are not,
so they stand for the machine's own network.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import BlobResourceContents
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from apimp_video_mcp import defaults
from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import running_app, sample_video
from apimp_video_mcp.store import SqliteTaskStore
from tests.support import Upstream, fast_settings, structured

pytestmark = pytest.mark.anyio

TASK_ID = "task_hostile"
# A trickle sends one byte this often, forever: never slow enough for a per-read timeout to fire.
TRICKLE_INTERVAL_SECONDS = 0.01
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


@dataclass
class HostileFiles:
    """Result files served by an app on loopback, which records what was asked of it."""

    base_url: str = ""
    requests: list[str] = field(default_factory=list)
    trickle_started: anyio.Event = field(default_factory=anyio.Event)
    trickle_ended: anyio.Event = field(default_factory=anyio.Event)
    gate: anyio.Event = field(default_factory=anyio.Event)  # /gated.mp4 answers once it is set

    @property
    def port(self) -> int:
        port = urlsplit(self.base_url).port
        assert port is not None
        return port

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def app(self) -> Starlette:
        async def video(request: Request) -> Response:
            return Response(sample_video(), media_type="video/mp4")

        async def page(request: Request) -> Response:
            return PlainTextResponse("<html><body>internal admin page</body></html>", media_type="text/html")

        async def redirect(request: Request) -> Response:
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def trickle(request: Request) -> Response:
            async def body() -> AsyncIterator[bytes]:
                self.trickle_started.set()
                try:
                    yield MP4_HEAD
                    while True:
                        await anyio.sleep(TRICKLE_INTERVAL_SECONDS)
                        yield b"\x00"
                finally:
                    self.trickle_ended.set()

            return StreamingResponse(body(), media_type="video/mp4")

        async def gated(request: Request) -> Response:
            await self.gate.wait()
            return await video(request)

        async def record(request: Request) -> Response:
            self.requests.append(request.url.path)
            handler = {
                "/page.mp4": page,
                "/redirect.mp4": redirect,
                "/trickle.mp4": trickle,
                "/gated.mp4": gated,
            }
            return await handler.get(request.url.path, video)(request)

        return Starlette(routes=[Route("/{path:path}", record)])


@pytest.fixture
async def files() -> AsyncIterator[HostileFiles]:
    hostile = HostileFiles()
    async with running_app(hostile.app()) as base_url:
        hostile.base_url = base_url
        yield hostile


def answer_finished_with(upstream: Upstream, urls: list[str]) -> None:
    """Every status query of the next few hundred answers: finished, with these result files."""
    data = {
        "task_id": TASK_ID,
        "status": "finished",
        "progress": 100,
        "files": [{"file_url": url, "file_type": "video"} for url in urls],
    }
    upstream.simulator.inject_fault(
        path_prefix="/api/generate/status", status=200, body={"code": 200, "data": data}, times=500
    )


def hostile_settings(upstream: Upstream, files: HostileFiles, tmp_path: Path, **overrides: Any) -> Settings:
    allowed = (f"127.0.0.1:{files.port}",)
    return fast_settings(upstream.base_url, tmp_path / "videos", download_allowed_hosts=allowed, **overrides)


async def wait_for(client: Client, **arguments: Any) -> dict[str, Any]:
    with anyio.fail_after(10):  # a guard against hanging, not a timed assertion
        return structured(await client.call_tool("wait_for_video", {"task_id": TASK_ID, **arguments}))


async def see_finished(client: Client) -> None:
    """One status query, so the journal knows the task has finished and a wait needs no APIMP answer."""
    assert structured(await client.call_tool("get_status", {"task_id": TASK_ID}))["status"] == "finished"


def saved_files(settings: Settings) -> list[str]:
    folder = settings.download_dir
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# --- Addresses: loopback, private, link-local and metadata hosts are refused -----------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("localhost", "loopback"),  # a name: the check is on the address it resolves to
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped IPv6 reaches 127.0.0.1 on a dual-stack socket
        ("[::1]", "loopback"),
    ],
)
async def test_a_result_url_on_the_machines_own_network_is_refused_and_never_fetched(
    upstream: Upstream, files: HostileFiles, tmp_path: Path, host: str, kind: str
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [f"http://{host}:{files.port}/secret.mp4"])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)
        with pytest.raises(MCPError, match=r"\(download_failed\): refused"):
            await client.read_resource(f"apimp://videos/{TASK_ID}")

    assert waited["status"] == "finished"
    assert waited["saved_videos"] == []
    assert kind in waited["download_error"]
    assert "APIMP_DOWNLOAD_ALLOWED_HOSTS" in waited["download_error"]
    assert files.requests == []
    assert saved_files(settings) == []


async def test_the_cloud_metadata_address_is_refused_before_any_connection(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, ["http://169.254.169.254/latest/meta-data/iam.mp4"])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)

    assert "link-local" in waited["download_error"]
    assert saved_files(settings) == []


async def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    target = f"http://localhost:{files.port}/secret.mp4"
    answer_finished_with(upstream, [files.url(f"/redirect.mp4?to={target}")])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)

    assert "loopback" in waited["download_error"]
    assert files.requests == ["/redirect.mp4"]
    assert saved_files(settings) == []


# --- Content: only a video is saved or served --------------------------------------------------------


async def test_a_page_posing_as_an_mp4_is_neither_saved_nor_served(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url("/page.mp4")])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)
        with pytest.raises(MCPError, match="not a video"):
            await client.read_resource(f"apimp://videos/{TASK_ID}")

    assert waited["saved_videos"] == []
    assert "not a video" in waited["download_error"]
    assert saved_files(settings) == []


async def test_a_saved_copy_that_is_not_a_video_is_not_served_and_is_replaced(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    """A copy an older version saved (or anything else put there) is checked before it is used."""
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url("/video.mp4")])
    async with Client(build_server(settings)) as client:
        await wait_for(client, download=False)
    impostor = settings.download_dir / f"{TASK_ID}.mp4"
    impostor.parent.mkdir(parents=True)
    impostor.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    journal = SqliteTaskStore(settings.journal_path)
    await journal.record_local_paths(TASK_ID, [str(impostor)])
    await journal.close()

    async with Client(build_server(settings)) as client:
        [content] = (await client.read_resource(f"apimp://videos/{TASK_ID}")).contents
        waited = await wait_for(client)

    assert isinstance(content, BlobResourceContents)
    assert base64.b64decode(content.blob) == sample_video()
    assert waited["download_error"] is None
    assert impostor.read_bytes() == sample_video()


# --- Limits per task --------------------------------------------------------------------------------


async def test_a_task_listing_fifty_files_saves_only_the_first_few(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url(f"/video-{n}.mp4") for n in range(50)])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)

    assert len(waited["saved_videos"]) == 4  # the default APIMP_DOWNLOAD_MAX_FILES
    assert len(saved_files(settings)) == 4
    assert len(files.requests) == 4
    assert "50 videos" in waited["download_error"]
    assert "APIMP_DOWNLOAD_MAX_FILES" in waited["download_error"]


async def test_the_bytes_of_one_task_are_capped_as_a_whole(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    size = len(sample_video())
    settings = hostile_settings(upstream, files, tmp_path, download_max_task_bytes=size * 5 // 2)
    answer_finished_with(upstream, [files.url(f"/video-{n}.mp4") for n in range(3)])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)

    assert [video["size_bytes"] for video in waited["saved_videos"]] == [size, size]
    assert len(saved_files(settings)) == 2
    assert "APIMP_DOWNLOAD_MAX_TASK_BYTES" in waited["download_error"]


async def test_a_cap_under_one_mib_is_stated_in_bytes(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path, download_max_bytes=1000)
    answer_finished_with(upstream, [files.url("/video.mp4")])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client)

    assert "the 1000-byte cap" in waited["download_error"]
    assert "0 MiB" not in waited["download_error"]


# --- Deadlines ---------------------------------------------------------------------------------------


async def test_a_trickling_body_does_not_hold_the_wait_past_its_deadline(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url("/trickle.mp4")])

    async with Client(build_server(settings)) as client:
        await see_finished(client)
        waited = await wait_for(client, timeout_seconds=0.05)
        with anyio.fail_after(5):
            await files.trickle_started.wait()  # the download goes on after the wait returned
        assert not files.trickle_ended.is_set()

    assert waited["status"] == "finished"
    assert waited["saving_in_background"] is True
    assert waited["saved_videos"] == []
    assert waited["download_error"] is None
    assert "still being saved" in waited["next_step"]
    assert "wait_for_video" in waited["next_step"]
    # The background download belonged to the server: it ended with it, leaving no partial file.
    with anyio.fail_after(5):
        await files.trickle_ended.wait()
    assert saved_files(settings) == []


async def test_a_download_ends_by_its_own_deadline_and_the_wait_says_why(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path, download_timeout_seconds=0.3)
    answer_finished_with(upstream, [files.url("/trickle.mp4")])

    async with Client(build_server(settings)) as client:
        waited = await wait_for(client, timeout_seconds=8)  # far longer than the download's deadline
        with pytest.raises(MCPError, match="APIMP_DOWNLOAD_TIMEOUT"):
            await client.read_resource(f"apimp://videos/{TASK_ID}")

    assert waited["saving_in_background"] is False
    assert "APIMP_DOWNLOAD_TIMEOUT" in waited["download_error"]
    assert saved_files(settings) == []


async def test_waiting_again_returns_the_file_the_background_download_saved(
    upstream: Upstream, files: HostileFiles, tmp_path: Path
) -> None:
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url("/gated.mp4")])

    async with Client(build_server(settings)) as client:
        await see_finished(client)
        first = await wait_for(client, timeout_seconds=0.05)  # the file host holds its answer back
        files.gate.set()
        second = await wait_for(client, timeout_seconds=5)

    assert first["saving_in_background"] is True
    [saved] = second["saved_videos"]
    assert Path(saved["path"]).read_bytes() == sample_video()
    assert second["saving_in_background"] is False


async def test_the_video_resource_answers_still_saving_by_its_deadline_then_serves_the_copy(
    upstream: Upstream, files: HostileFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "UI_SAVE_CALL_TIMEOUT_SECONDS", 0.05)
    settings = hostile_settings(upstream, files, tmp_path)
    answer_finished_with(upstream, [files.url("/gated.mp4")])

    async with Client(build_server(settings)) as client:
        await see_finished(client)
        with anyio.fail_after(10), pytest.raises(MCPError, match=r"\(saving\)"):
            await client.read_resource(f"apimp://videos/{TASK_ID}")
        files.gate.set()
        await wait_for(client, timeout_seconds=5)
        [content] = (await client.read_resource(f"apimp://videos/{TASK_ID}")).contents

    assert isinstance(content, BlobResourceContents)
    assert base64.b64decode(content.blob) == sample_video()
