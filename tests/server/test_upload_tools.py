"""Local images as first frames, through the tools: upload_image, local paths in submit_video, and the
refusals that keep the server's files safe. Driven through the SDK's in-memory Client against the
simulator on loopback."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from tests.support import Mode, Upstream, fast_settings, structured, text_of
from tests.support.uploads import PNG, submit_arguments

pytestmark = pytest.mark.anyio

UPLOAD = "/api/common/upload/stream"
SUBMIT = "/api/generate/submit"


@pytest.fixture
def settings(upload_settings: Settings) -> Settings:
    return upload_settings


async def test_a_local_png_is_uploaded_and_the_submit_carries_its_hosted_url(
    client: Client, upstream: Upstream, png: Path
) -> None:
    arguments = submit_arguments(image=str(png), size="1280x720", metadata={"seed": 7})

    result = await client.call_tool("submit_video", arguments)

    data = structured(result)
    [uploaded] = data["uploaded_images"]
    assert uploaded["source"] == str(png)
    assert uploaded["path"] == str(png.resolve())
    assert uploaded["mime_type"] == "image/png"
    assert uploaded["size_bytes"] == len(PNG)
    assert uploaded["url"].startswith(f"{upstream.base_url}/uploads/")
    [upload] = upstream.simulator.requests_to(UPLOAD)
    assert upload.headers["authorization"] == f"Bearer {SIMULATOR_API_KEY}"
    assert upload.headers["content-length"] == str(len(upload.body)), "streamed with an exact length"
    assert PNG in upload.body
    [sent] = upstream.simulator.requests_to(SUBMIT)
    assert sent.json() == {**arguments, "input": {**arguments["input"], "image": uploaded["url"]}}
    assert uploaded["url"] in text_of(result)
    async with httpx2.AsyncClient() as http:
        served = await http.get(uploaded["url"])
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"


async def test_a_file_url_in_images_is_uploaded_once_even_when_also_given_as_image(
    client: Client, upstream: Upstream, png: Path
) -> None:
    result = await client.call_tool("submit_video", submit_arguments(image=str(png), images=[png.as_uri()]))

    [uploaded] = structured(result)["uploaded_images"]
    assert len(upstream.simulator.requests_to(UPLOAD)) == 1
    [sent] = upstream.simulator.requests_to(SUBMIT)
    assert sent.json()["input"]["image"] == uploaded["url"]
    assert sent.json()["input"]["images"] == [uploaded["url"]]


async def test_an_http_image_url_is_passed_through_untouched(client: Client, upstream: Upstream) -> None:
    url = "https://example.com/frame.png?sig=a%20b&x=1"

    result = await client.call_tool("submit_video", submit_arguments(image=url))

    assert structured(result)["uploaded_images"] == []
    assert upstream.simulator.requests_to(UPLOAD) == []
    [sent] = upstream.simulator.requests_to(SUBMIT)
    assert sent.json()["input"]["image"] == url


async def test_upload_image_returns_the_url_expiry_size_and_mime_type(
    client: Client, upstream: Upstream, allowed: Path
) -> None:
    jpeg = allowed / "photo.jpeg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 60)

    result = await client.call_tool("upload_image", {"path": str(jpeg)})

    data = structured(result)
    assert data["mime_type"] == "image/jpeg"
    assert data["size_bytes"] == 64
    assert data["url"].startswith(f"{upstream.base_url}/uploads/")
    assert data["url"].endswith(".jpeg")
    expires = datetime.fromisoformat(data["expires_at"])
    now = datetime.now(UTC).replace(tzinfo=None)  # APIMP's times are UTC without a zone
    assert timedelta(hours=71) < expires - now < timedelta(hours=73)
    assert "submit_video" in data["next_step"]
    assert data["url"] in text_of(result)
    assert upstream.simulator.requests_to(SUBMIT) == [], "uploading alone submits nothing"


async def test_upload_image_is_announced_as_a_write_that_is_not_idempotent(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    hints = tools["upload_image"].annotations
    assert hints is not None
    assert hints.read_only_hint is False
    assert hints.idempotent_hint is False
    assert hints.destructive_hint is False
    assert hints.open_world_hint is True
    assert tools["upload_image"].output_schema is not None
    assert (
        "local"
        in tools["submit_video"].input_schema["properties"]["input"]["properties"]["image"]["description"]
    )


async def test_a_relative_path_is_read_from_the_working_directory(
    client: Client, upstream: Upstream, png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(png.parent)

    result = await client.call_tool("upload_image", {"path": png.name})

    assert structured(result)["path"] == str(png.resolve())


def outside_root(tmp: Path) -> str:
    return str(tmp / "outside" / "secret.png")


def symlink_escaping_root(tmp: Path) -> str:
    link = tmp / "allowed" / "innocent.png"
    link.symlink_to(tmp / "outside" / "secret.png")
    return str(link)


def dotdot_escaping_root(tmp: Path) -> str:
    return str(tmp / "allowed" / ".." / "outside" / "secret.png")


def symlinked_folder_escaping_root(tmp: Path) -> str:
    (tmp / "allowed" / "shared").symlink_to(tmp / "outside", target_is_directory=True)
    return str(tmp / "allowed" / "shared" / "secret.png")


def text_renamed_png(tmp: Path) -> str:
    path = tmp / "allowed" / "notes.png"
    path.write_text("these are my notes, not an image\n")
    return str(path)


def oversized_png(tmp: Path) -> str:
    path = tmp / "allowed" / "huge.png"
    path.write_bytes(PNG + b"\x00" * 5000)  # over the 4096-byte cap of these tests
    return str(path)


def missing_file(tmp: Path) -> str:
    return str(tmp / "allowed" / "missing.png")


def a_folder(tmp: Path) -> str:
    return str(tmp / "allowed")


def a_fifo(tmp: Path) -> str:
    path = tmp / "allowed" / "pipe.png"
    os.mkfifo(path)  # opening it for reading would block forever without O_NONBLOCK
    return str(path)


def a_symlink_loop(tmp: Path) -> str:
    loop = tmp / "allowed" / "loop.png"
    loop.symlink_to(loop)
    return str(loop)


def file_url_on_another_host(tmp: Path) -> str:
    return "file://fileserver/share/frame.png"


REFUSALS = [
    pytest.param(outside_root, "outside the folders", id="outside-the-roots"),
    pytest.param(symlink_escaping_root, "outside the folders", id="symlink-escaping"),
    pytest.param(dotdot_escaping_root, "outside the folders", id="dotdot-escaping"),
    pytest.param(symlinked_folder_escaping_root, "outside the folders", id="symlinked-folder-escaping"),
    pytest.param(text_renamed_png, "not a PNG, JPEG, WebP or GIF", id="not-an-image"),
    pytest.param(oversized_png, "over the 4096 bytes upload limit (APIMP_UPLOAD_MAX_BYTES)", id="too-large"),
    pytest.param(missing_file, "no such file", id="missing"),
    pytest.param(a_folder, "folder", id="a-folder"),
    pytest.param(file_url_on_another_host, "not on a host", id="file-url-with-a-host"),
    pytest.param(a_symlink_loop, "cannot be opened", id="a-symlink-loop"),
    pytest.param(
        a_fifo,
        "not a regular file",
        id="a-fifo",
        marks=pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs"),
    ),
]


@pytest.mark.parametrize(("make_path", "rule"), REFUSALS)
async def test_an_unsafe_local_image_is_refused_by_both_tools_before_any_request(
    client: Client, upstream: Upstream, tmp_path: Path, outside: Path, make_path: Any, rule: str
) -> None:
    path = make_path(tmp_path)

    with anyio.fail_after(10):
        submitted = await client.call_tool("submit_video", submit_arguments(image=path))
        uploaded = await client.call_tool("upload_image", {"path": path})

    for result, field in ((submitted, "Invalid input.image"), (uploaded, "Invalid path")):
        assert result.is_error
        message = text_of(result)
        assert field in message
        assert repr(path) in message, "the message names the path as given"
        assert rule in message
    assert upstream.simulator.received == []


async def test_one_bad_image_refuses_the_whole_call_even_after_a_good_one(
    client: Client, upstream: Upstream, png: Path, outside: Path
) -> None:
    arguments = submit_arguments(image=str(png), images=[str(outside / "secret.png")])

    result = await client.call_tool("submit_video", arguments)

    assert result.is_error
    assert "input.images[0]" in text_of(result)
    assert upstream.simulator.received == []


@pytest.mark.parametrize("image", ["data:image/png;base64,iVBORw0KGgo=", "ftp://example.com/a.png"])
async def test_other_url_schemes_are_refused_by_the_schema(
    client: Client, upstream: Upstream, image: str
) -> None:
    result = await client.call_tool("submit_video", submit_arguments(image=image))

    assert result.is_error
    assert "input.image" in text_of(result)
    assert upstream.simulator.received == []


async def test_upload_image_sends_an_http_url_back_to_submit_video(
    client: Client, upstream: Upstream
) -> None:
    result = await client.call_tool("upload_image", {"path": "https://example.com/a.png"})

    assert result.is_error
    assert "already a URL" in text_of(result)
    assert upstream.simulator.received == []


@pytest.mark.each_era
async def test_over_http_no_local_file_is_read_unless_folders_are_configured(
    upstream: Upstream, tmp_path: Path, png: Path, mode: Mode
) -> None:
    no_roots = fast_settings(upstream.base_url, tmp_path / "videos")  # APIMP_UPLOAD_ROOTS unset
    async with Client(build_server(no_roots, transport="streamable-http"), mode=mode) as client:
        submitted = await client.call_tool("submit_video", submit_arguments(image=str(png)))
        uploaded = await client.call_tool("upload_image", {"path": png.as_uri()})
        by_url = await client.call_tool("submit_video", submit_arguments(image="https://example.com/a.png"))

    for result in (submitted, uploaded):
        assert result.is_error
        assert "reached over HTTP" in text_of(result)
        assert "APIMP_UPLOAD_ROOTS" in text_of(result)
    assert structured(by_url)["uploaded_images"] == []
    [only] = upstream.simulator.received
    assert only.path == SUBMIT, "only the URL submit reached APIMP"


async def test_over_http_configured_folders_are_honoured(
    upstream: Upstream, tmp_path: Path, png: Path, allowed: Path
) -> None:
    configured = fast_settings(upstream.base_url, tmp_path / "videos", upload_roots=(allowed,))
    async with Client(build_server(configured, transport="streamable-http")) as client:
        result = await client.call_tool("upload_image", {"path": str(png)})

    assert structured(result)["mime_type"] == "image/png"


async def test_roots_set_to_none_turn_local_files_off_even_over_stdio(
    upstream: Upstream, tmp_path: Path, png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(png.parent)
    turned_off = fast_settings(upstream.base_url, tmp_path / "videos", upload_roots="none")
    async with Client(build_server(turned_off, transport="stdio")) as client:
        result = await client.call_tool("upload_image", {"path": str(png)})

    assert result.is_error
    assert "APIMP_UPLOAD_ROOTS=none" in text_of(result)
    assert upstream.simulator.received == []


async def test_over_stdio_the_working_directory_is_allowed_by_default(
    upstream: Upstream, tmp_path: Path, png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(png.parent)
    async with Client(
        build_server(fast_settings(upstream.base_url, tmp_path / "v"), transport="stdio")
    ) as client:
        result = await client.call_tool("upload_image", {"path": png.name})

    assert structured(result)["size_bytes"] == len(PNG)
