"""Local images as first frames: upload_image, local paths in submit_video, and the rules that keep
the server's files safe. Driven through the SDK's in-memory Client against the simulator on loopback;
the simulator's upload endpoints and the containment rules are also tested on their own."""

from __future__ import annotations

import os
import socket
import struct
import sys
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError, LocalFileError
from apimp_video_mcp.local_files import (
    LocalFilePolicy,
    contained_real_path,
    default_upload_roots,
    is_within,
    local_path,
    sniff_image_type,
)
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator
from apimp_video_mcp.upstream.multipart import MultipartFileBody
from tests.support import Mode, Upstream, fast_settings, structured, text_of

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-fast-generate-preview"
UPLOAD = "/api/common/upload/stream"
SUBMIT = "/api/generate/submit"
AUTH = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}


def tiny_png() -> bytes:
    """A valid 1x1 RGB PNG, built by hand so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = tiny_png()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.png").write_bytes(PNG)
    return folder


@pytest.fixture
def png(allowed: Path) -> Path:
    path = allowed / "first frame.png"
    path.write_bytes(PNG)
    return path


@pytest.fixture
def settings(upstream: Upstream, tmp_path: Path, allowed: Path) -> Settings:
    return fast_settings(
        upstream.base_url, tmp_path / "videos", upload_roots=(allowed,), upload_max_bytes=4096
    )


@pytest.fixture
async def one_era_client(settings: Settings) -> AsyncIterator[Client]:
    """One protocol era where the protocol is not what is tested: the refusal matrix stays fast."""
    async with Client(build_server(settings)) as connected:
        yield connected


def submit_arguments(**input_: Any) -> dict[str, Any]:
    return {"model": VEO, "input": {"prompt": "the scene comes alive, slow push in", **input_}}


# --- the happy paths ---------------------------------------------------------------------------


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
    one_era_client: Client, upstream: Upstream, png: Path
) -> None:
    result = await one_era_client.call_tool(
        "submit_video", submit_arguments(image=str(png), images=[png.as_uri()])
    )

    [uploaded] = structured(result)["uploaded_images"]
    assert len(upstream.simulator.requests_to(UPLOAD)) == 1
    [sent] = upstream.simulator.requests_to(SUBMIT)
    assert sent.json()["input"]["image"] == uploaded["url"]
    assert sent.json()["input"]["images"] == [uploaded["url"]]


async def test_an_http_image_url_is_passed_through_untouched(
    one_era_client: Client, upstream: Upstream
) -> None:
    url = "https://example.com/frame.png?sig=a%20b&x=1"

    result = await one_era_client.call_tool("submit_video", submit_arguments(image=url))

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
    one_era_client: Client, upstream: Upstream, png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(png.parent)

    result = await one_era_client.call_tool("upload_image", {"path": png.name})

    assert structured(result)["path"] == str(png.resolve())


async def test_a_server_error_on_upload_is_retried_with_the_whole_file_again(
    one_era_client: Client, upstream: Upstream, png: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=503)

    result = await one_era_client.call_tool("submit_video", submit_arguments(image=str(png)))

    assert not result.is_error, text_of(result)
    first, second = upstream.simulator.requests_to(UPLOAD)
    assert PNG in first.body
    assert PNG in second.body
    assert len(upstream.simulator.requests_to(SUBMIT)) == 1


async def test_a_refused_upload_stops_the_submit_and_says_nothing_was_charged(
    one_era_client: Client, upstream: Upstream, png: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=400, body={"detail": "Invalid file data"})

    result = await one_era_client.call_tool("submit_video", submit_arguments(image=str(png)))

    assert result.is_error
    assert "Invalid file data" in text_of(result)
    assert "NOT submitted" in text_of(result)
    assert str(png) in text_of(result)
    assert upstream.simulator.requests_to(SUBMIT) == []


async def test_a_validation_error_from_the_upload_api_is_spelled_out(
    one_era_client: Client, upstream: Upstream, png: Path
) -> None:
    problem = {"detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required"}]}
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=422, body=problem)

    result = await one_era_client.call_tool("upload_image", {"path": str(png)})

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
    one_era_client: Client, upstream: Upstream, png: Path, answer: dict[str, Any], reported: str
) -> None:
    upstream.simulator.inject_fault(path_prefix=UPLOAD, status=200, body=answer)

    result = await one_era_client.call_tool("upload_image", {"path": str(png)})

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


# --- refusals: a clear message, and no request upstream ------------------------------------------


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
    one_era_client: Client, upstream: Upstream, tmp_path: Path, outside: Path, make_path: Any, rule: str
) -> None:
    path = make_path(tmp_path)

    with anyio.fail_after(10):
        submitted = await one_era_client.call_tool("submit_video", submit_arguments(image=path))
        uploaded = await one_era_client.call_tool("upload_image", {"path": path})

    for result, field in ((submitted, "Invalid input.image"), (uploaded, "Invalid path")):
        assert result.is_error
        message = text_of(result)
        assert field in message
        assert repr(path) in message, "the message names the path as given"
        assert rule in message
    assert upstream.simulator.received == []


async def test_one_bad_image_refuses_the_whole_call_even_after_a_good_one(
    one_era_client: Client, upstream: Upstream, png: Path, outside: Path
) -> None:
    arguments = submit_arguments(image=str(png), images=[str(outside / "secret.png")])

    result = await one_era_client.call_tool("submit_video", arguments)

    assert result.is_error
    assert "input.images[0]" in text_of(result)
    assert upstream.simulator.received == []


@pytest.mark.parametrize("image", ["data:image/png;base64,iVBORw0KGgo=", "ftp://example.com/a.png"])
async def test_other_url_schemes_are_refused_by_the_schema(
    one_era_client: Client, upstream: Upstream, image: str
) -> None:
    result = await one_era_client.call_tool("submit_video", submit_arguments(image=image))

    assert result.is_error
    assert "input.image" in text_of(result)
    assert upstream.simulator.received == []


async def test_upload_image_sends_an_http_url_back_to_submit_video(
    one_era_client: Client, upstream: Upstream
) -> None:
    result = await one_era_client.call_tool("upload_image", {"path": "https://example.com/a.png"})

    assert result.is_error
    assert "already a URL" in text_of(result)
    assert upstream.simulator.received == []


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


# --- the rules themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/data/a/x.png", "/data/a", True),
        ("/data/a", "/data/a", True),
        ("/data/a/b/c/x.png", "/data/a", True),
        ("/data/ab/x.png", "/data/a", False),
        ("/data/x.png", "/data/a", False),
        ("/elsewhere/a/x.png", "/data/a", False),
        ("/data/a/x.png", "/", True),
    ],
)
def test_containment_compares_whole_path_components(path: str, root: str, inside: bool) -> None:
    assert is_within(Path(path), Path(root)) is inside


def test_containment_resolves_dotdot_and_every_symlink_first(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "out"
    root.mkdir()
    outside.mkdir()
    (root / "real.png").write_bytes(PNG)
    (root / "alias.png").symlink_to(root / "real.png")
    (root / "escape.png").symlink_to(outside / "x.png")  # dangling: the target need not exist
    (outside / "deep").mkdir()
    (root / "door").symlink_to(outside / "deep", target_is_directory=True)
    roots = [root.resolve()]

    assert contained_real_path(root / "real.png", roots) == (root / "real.png").resolve()
    assert contained_real_path(root / "alias.png", roots) == (root / "real.png").resolve()
    assert contained_real_path(root / "sub" / ".." / "real.png", roots) == (root / "real.png").resolve()
    assert contained_real_path(root / ".." / "out" / "x.png", roots) is None
    assert contained_real_path(root / "escape.png", roots) is None
    assert contained_real_path(root / "door" / "x.png", roots) is None
    # Read lexically, door/../x.png would be root/x.png; the OS applies .. to the link's target.
    assert contained_real_path(root / "door" / ".." / "x.png", roots) is None


def test_a_root_that_is_itself_a_symlink_is_resolved(tmp_path: Path, allowed: Path, png: Path) -> None:
    link = tmp_path / "link-to-allowed"
    link.symlink_to(allowed, target_is_directory=True)

    policy = LocalFilePolicy.for_transport((link,), None, max_bytes=4096)

    assert policy.roots == (allowed.resolve(),)
    assert contained_real_path(link / png.name, policy.roots) == png.resolve()


def test_stdio_defaults_to_the_working_directory_and_home_but_never_the_whole_disk(tmp_path: Path) -> None:
    home, project = tmp_path / "home" / "me", tmp_path / "work" / "project"
    home.mkdir(parents=True)
    project.mkdir(parents=True)
    real_home, real_project = home.resolve(), project.resolve()

    assert default_upload_roots("stdio", cwd=project, home=home) == (real_project, real_home)
    assert default_upload_roots("stdio", cwd=home, home=home) == (real_home,)
    assert default_upload_roots("stdio", cwd=Path("/"), home=home) == (real_home,)
    assert default_upload_roots("stdio", cwd=home.parent, home=home) == (real_home,), "not other homes"
    assert default_upload_roots("stdio", cwd=Path("/"), home=None) == ()
    assert default_upload_roots("streamable-http", cwd=project, home=home) == ()
    assert default_upload_roots(None, cwd=project, home=home) == ()


@pytest.mark.parametrize(
    ("head", "mime_type"),
    [
        (PNG[:12], "image/png"),
        (b"\xff\xd8\xff\xdb" + b"\x00" * 8, "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00", "image/gif"),
        (b"GIF87a", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBP", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVE", None),
        (b"BM" + b"\x00" * 10, None),  # BMP: not accepted upstream
        (b"%PDF-1.7\n", None),
        (b"", None),
    ],
)
def test_images_are_recognised_by_their_signature(head: bytes, mime_type: str | None) -> None:
    assert sniff_image_type(head) == mime_type


def test_local_references_are_parsed_as_paths_or_file_urls(tmp_path: Path) -> None:
    assert local_path("/a/b.png", cwd=tmp_path) == Path("/a/b.png")
    assert local_path("b.png", cwd=tmp_path) == tmp_path / "b.png"
    assert local_path("~/b.png", cwd=tmp_path) == Path.home() / "b.png"
    assert local_path("file:///a/my%20frame.png", cwd=tmp_path) == Path("/a/my frame.png")
    assert local_path("file://localhost/a/b.png", cwd=tmp_path) == Path("/a/b.png")
    for bad, reason in [
        ("file://host/a.png", "not on a host"),
        ("file:///a.png?x=1", "query"),
        ("/a/b\x00.png", "NUL"),
        ("~no-such-user-4f1c/b.png", "cannot be expanded"),
    ]:
        with pytest.raises(ValueError, match=reason):
            local_path(bad, cwd=tmp_path)


async def test_a_file_that_changes_while_uploading_is_refused(allowed: Path, png: Path) -> None:
    policy = LocalFilePolicy.for_transport((allowed,), None, max_bytes=4096)

    async with policy.open_image(str(png), field="input.image") as image:
        png.write_bytes(PNG[:10])  # truncated in place, under the open descriptor
        with pytest.raises(LocalFileError, match="shrank"):
            _ = [chunk async for chunk in image.chunks(8)]
        png.write_bytes(PNG + b"more")
        with pytest.raises(LocalFileError, match="grew"):
            _ = [chunk async for chunk in image.chunks(8)]


async def test_the_upload_name_matches_the_content_not_the_extension(allowed: Path) -> None:
    disguised = allowed / 'my "holiday" photo.gif'
    disguised.write_bytes(PNG)
    policy = LocalFilePolicy.for_transport((allowed,), None, max_bytes=4096)

    async with policy.open_image(str(disguised), field="path") as image:
        assert image.mime_type == "image/png"
        assert image.upload_name == "my_holiday_photo.png"


async def test_the_multipart_body_has_the_exact_length_and_can_be_sent_twice() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield PNG[:20]
        yield PNG[20:]

    body = MultipartFileBody(
        field="file", filename='a"b\r\n.png', content_type="image/png", size_bytes=len(PNG), chunks=chunks
    )

    first = b"".join([part async for part in body])
    second = b"".join([part async for part in body])
    assert first == second
    assert len(first) == body.content_length == int(body.headers["content-length"])
    assert b'filename="a%22b%0D%0A.png"' in first
    assert body.headers["content-type"] == f"multipart/form-data; boundary={body.boundary}"


def test_upload_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "APIMP_UPLOAD_ROOTS": os.pathsep.join(["/srv/images", "~/Pictures"]),
            "APIMP_UPLOAD_MAX_BYTES": "1024",
        }
    )

    assert settings.upload_roots == (Path("/srv/images"), Path.home() / "Pictures")
    assert settings.upload_max_bytes == 1024
    assert Settings.from_env({}).upload_roots is None, "unset: the transport decides"
    assert Settings.from_env({"APIMP_UPLOAD_ROOTS": "None"}).upload_roots == ()
    with pytest.raises(ConfigurationError, match=r"APIMP_UPLOAD_ROOTS: .*absolute"):
        Settings.from_env({"APIMP_UPLOAD_ROOTS": "relative/images"})
    with pytest.raises(ConfigurationError, match=r"APIMP_UPLOAD_ROOTS: .*lists no folder"):
        Settings.from_env({"APIMP_UPLOAD_ROOTS": os.pathsep})
    with pytest.raises(ConfigurationError, match="APIMP_UPLOAD_MAX_BYTES"):
        Settings.from_env({"APIMP_UPLOAD_MAX_BYTES": "0"})


# --- the simulator's upload endpoints ----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim_http(clock: FakeClock) -> AsyncIterator[tuple[Simulator, httpx2.AsyncClient]]:
    sim = Simulator(clock=clock, seed=3)
    transport = httpx2.ASGITransport(app=sim.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sim") as http:
        yield sim, http


async def test_the_simulated_stream_upload_answers_the_documented_envelope(
    sim_http: tuple[Simulator, httpx2.AsyncClient], clock: FakeClock
) -> None:
    sim, http = sim_http

    response = await http.post(
        UPLOAD,
        files={"file": ("frame.png", PNG, "image/png")},
        data={"upload_path": "frames/day1"},
        headers=AUTH,
    )

    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["success"] is True
    assert envelope["code"] == 200
    data = envelope["data"]
    assert data["original_name"] == "frame.png"
    assert data["file_size"] == len(PNG)
    assert data["mime_type"] == "image/png"
    assert data["upload_path"] == "temp/frames/day1"
    assert data["file_name"] == f"{data['file_id']}.png"
    uploaded, expires = (
        datetime.fromisoformat(data["upload_time"]),
        datetime.fromisoformat(data["expires_at"]),
    )
    assert expires - uploaded == timedelta(hours=72)
    served = await http.get(data["file_url"])
    assert served.content == PNG
    download = await http.get(data["download_url"])
    assert "attachment" in download.headers["content-disposition"]
    assert (await http.head(data["file_url"])).headers["content-length"] == str(len(PNG))
    [received] = sim.requests_to(UPLOAD)
    assert PNG in received.body
    clock.now += 72 * 3600
    assert (await http.get(data["file_url"])).status_code == 410


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        (
            {"files": {"file": ("a.png", PNG)}, "data": {"upload_path": "../escape"}},
            400,
            "Invalid upload path",
        ),
        ({"files": {"file": ("a.png", b"")}}, 400, "Invalid file data"),
        ({"data": {"upload_path": "x"}}, 422, None),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
            400,
            "Invalid file data",
        ),
    ],
)
async def test_the_simulated_stream_upload_refuses_bad_requests_with_detail(
    sim_http: tuple[Simulator, httpx2.AsyncClient], kwargs: dict[str, Any], status: int, detail: str | None
) -> None:
    _, http = sim_http
    headers = {**AUTH, **kwargs.pop("headers", {})}

    response = await http.post(UPLOAD, headers=headers, **kwargs)

    assert response.status_code == status
    assert "detail" in response.json()
    if detail is not None:
        assert detail in response.json()["detail"]
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "file"]


async def test_the_simulated_upload_endpoints_need_the_key(
    sim_http: tuple[Simulator, httpx2.AsyncClient],
) -> None:
    _, http = sim_http

    stream = await http.post(UPLOAD, files={"file": ("a.png", PNG)})
    by_url = await http.post("/api/common/upload/url", json={"file_url": "https://x/a.png"})

    assert stream.status_code == by_url.status_code == 401
    assert stream.json() == {"detail": "Invalid API key"}


async def test_the_simulated_url_upload_fetches_and_stores_the_file(
    sim_http: tuple[Simulator, httpx2.AsyncClient],
) -> None:
    sim, http = sim_http
    first = (await http.post(UPLOAD, files={"file": ("a.png", PNG, "image/png")}, headers=AUTH)).json()[
        "data"
    ]

    response = await http.post(
        "/api/common/upload/url", json={"file_url": first["file_url"], "upload_path": "copies"}, headers=AUTH
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["file_id"] != first["file_id"]
    assert data["upload_path"] == "temp/copies"
    assert data["mime_type"] == "image/png"
    assert (await http.get(data["file_url"])).content == PNG
    assert len(sim.uploads.files) == 2


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"file_url": "ftp://example.com/a.png"}, 400),
        ({"file_url": "http://sim/uploads/0123abcd/missing.png"}, 400),
        ({"file_url": "http://127.0.0.1:9/unreachable.png"}, 400),
        ({"upload_path": "x"}, 422),
    ],
)
async def test_the_simulated_url_upload_refuses_what_it_cannot_fetch(
    sim_http: tuple[Simulator, httpx2.AsyncClient], payload: dict[str, Any], status: int
) -> None:
    _, http = sim_http

    response = await http.post("/api/common/upload/url", json=payload, headers=AUTH)

    assert response.status_code == status
    assert "detail" in response.json()


async def test_the_simulated_url_upload_fetches_from_another_host(tmp_path: Path) -> None:
    origin, gateway = Simulator(seed=1), Simulator(seed=2)
    async with (
        running_simulator(origin) as origin_url,
        running_simulator(gateway) as gateway_url,
        httpx2.AsyncClient() as http,
    ):
        stored = await http.post(
            f"{origin_url}{UPLOAD}", files={"file": ("frame", PNG, "application/octet-stream")}, headers=AUTH
        )
        response = await http.post(
            f"{gateway_url}/api/common/upload/url",
            json={"file_url": stored.json()["data"]["file_url"]},
            headers=AUTH,
        )
        broken = await http.post(f"{gateway_url}/api/common/upload/url", content=b"{not json", headers=AUTH)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["file_size"] == len(PNG)
    assert data["file_url"].startswith(gateway_url)
    assert [file.content for file in gateway.uploads.files.values()] == [PNG]
    assert broken.status_code == 400
    assert broken.json() == {"detail": "Invalid JSON body"}
