"""Which local files may be read: containment in the allowed roots, symlinks, signatures, and files that
change while they are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from apimp_video_mcp.errors import LocalFileError
from apimp_video_mcp.local_files import (
    LocalFilePolicy,
    contained_real_path,
    default_upload_roots,
    is_within,
    local_path,
    sniff_image_type,
)
from tests.support.uploads import PNG

pytestmark = pytest.mark.anyio


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
