"""Which local files may be uploaded, and opening them so that no rule can be dodged.

A tool argument that names a local file comes from a model, and a model may be steered by anything
it has read (a web page, a README). So a path is honoured only when every rule below holds, all
checked before a byte leaves the machine:

1. Its real path, with every symlink and `..` resolved, lies inside one of the allowed roots. A
   symlink pointing out of a root, or `root/../elsewhere`, resolves outside and is refused; the
   check needs no existing file, so probing outside the roots learns nothing about what exists.
2. It is a regular file, opened without following a symlink planted after the check
   (`O_NOFOLLOW`) and without hanging on a FIFO (`O_NONBLOCK`).
3. Its first bytes are a PNG, JPEG, WebP or GIF signature: the extension proves nothing.
4. It is no larger than the size cap.

Size and type are read from the opened descriptor, and the upload streams from that same
descriptor, so what was checked is what is sent. (Someone who can rename directories inside a root
between our check and our open could still redirect the open: that local race is outside the threat
model, which is a remote or misled caller naming paths.)

Which roots: over stdio the server is the user's own process, started by their host, so it defaults
to their working directory and home. Over streamable HTTP the caller is remote, a path would name a
file on the server's machine rather than the caller's, and the default is no root at all.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Final, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

import anyio

from apimp_video_mcp.config import UPLOAD_ROOTS_NONE
from apimp_video_mcp.errors import LocalFileError

logger = logging.getLogger(__name__)

Transport = Literal["stdio", "streamable-http"]

# The image types APIMP's video models take as a first frame, with the extensions that name them
# (the first is used when a file's own extension does not match its content).
IMAGE_EXTENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
}
SIGNATURE_BYTES: Final = 12  # enough for every signature below (WebP's ends at byte 12)

_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
# Never block on a FIFO or device at open; never follow a symlink swapped in after the check.
_OPEN_FLAGS: Final = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

_NO_ROOTS_CONFIGURED: Final = (
    "this server reads no local files (no folder is allowed: APIMP_UPLOAD_ROOTS is not set). Use an "
    "image URL (http or https) instead."
)
_NO_ROOTS_REMOTE: Final = (
    "this server is reached over HTTP, so a local path would name a file on the server's machine, not "
    "yours, and remote callers may not read its files. Use an image URL (http or https) instead; the "
    "server's operator can allow folders with APIMP_UPLOAD_ROOTS."
)
_NO_ROOTS_FOR_PRINCIPAL: Final = (
    "this server is reached over HTTP and its operator allowed no folder for your key, so it reads no "
    "local file for you. Use an image URL (http or https) instead; the operator can map a folder to "
    "your key in the keys file (upload_roots)."
)
_NO_ROOTS_TURNED_OFF: Final = (
    f"local files are turned off on this server (APIMP_UPLOAD_ROOTS={UPLOAD_ROOTS_NONE}). Use an image "
    "URL (http or https) instead."
)


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type a file's first bytes declare, or None when they are no accepted image's."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_local_reference(value: str) -> bool:
    """http(s) URLs go to APIMP as they are; anything else the schema admits names a local file."""
    return not value.startswith(("http://", "https://"))


def is_within(path: Path, root: Path) -> bool:
    """Whether `path` is `root` or below it. Both must be resolved already.

    Whole components are compared, so /data/ab is not inside /data/a; case is folded where the
    operating system folds it (Windows), never elsewhere.
    """
    return PurePath(os.path.normcase(path)).is_relative_to(os.path.normcase(root))


def contained_real_path(candidate: Path, roots: Sequence[Path]) -> Path | None:
    """The real path of `candidate` when it lies inside one of `roots` (resolved), else None.

    Every symlink (the final one included) and every `..` is resolved first, so neither can lead
    out of a root. The file need not exist.
    """
    real = Path(os.path.realpath(candidate))
    return real if any(is_within(real, root) for root in roots) else None


def local_path(source: str, *, cwd: Path) -> Path:
    """The absolute path a local reference names: a path (`~` expanded; relative to `cwd`) or a
    file:// URL. Raises ValueError, with a message for the caller, when it names no local path."""
    if source.startswith("file:"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a file:// URL must name a file on this machine (file:///path), not on a host")
        if parts.query or parts.fragment:
            raise ValueError("a file:// URL cannot have a query or fragment; percent-encode '?' and '#'")
        path = Path(url2pathname(parts.path))
    else:
        try:
            path = Path(source).expanduser()
        except RuntimeError:  # ~user of an unknown user
            raise ValueError("its ~ cannot be expanded on this machine") from None
    if "\x00" in str(path):
        raise ValueError("the path contains a NUL character")
    return path if path.is_absolute() else cwd / path


def default_upload_roots(transport: Transport | None, *, cwd: Path, home: Path | None) -> tuple[Path, ...]:
    """The folders whose images may be uploaded when APIMP_UPLOAD_ROOTS is not set, resolved.

    stdio: the working directory (IDE hosts start servers in the open project) and the home directory
    (Desktop, Downloads, Pictures), both the user's own files already. A candidate that is a
    filesystem root or above the home directory is dropped: some hosts (Claude Desktop) start servers
    in `/`, which would open the whole disk and other users' homes. Anything else (streamable HTTP,
    or an embedder that does not say how the server is reached): no folder.
    """
    if transport != "stdio":
        return ()
    real_home = Path(os.path.realpath(home)) if home is not None else None
    roots: dict[Path, None] = {}
    for candidate in (cwd, home):
        if candidate is None:
            continue
        real = Path(os.path.realpath(candidate))
        above_home = real_home is not None and real != real_home and is_within(real_home, real)
        if real.parent != real and not above_home:
            roots[real] = None
    return tuple(roots)


@dataclass(frozen=True)
class LocalImage:
    """An image file opened for upload, with what checking it established."""

    field: str  # the argument that named it, for error messages
    source: str  # the reference as the caller wrote it
    path: Path  # its real path
    size_bytes: int
    mime_type: str
    file: IO[bytes]

    @property
    def upload_name(self) -> str:
        """A safe file name whose extension matches the content (upstreams often judge by the name)."""
        stem = _SAFE_NAME.sub("_", self.path.stem).strip("._") or "image"
        extensions = IMAGE_EXTENSIONS[self.mime_type]
        extension = self.path.suffix.lower()
        return stem + (extension if extension in extensions else extensions[0])

    async def chunks(self, chunk_bytes: int) -> AsyncIterator[bytes]:
        """Exactly the checked bytes, from the first, read in a worker thread so the event loop never
        blocks on the disk. Each call starts over, so a retried upload sends the whole file again."""
        reader = anyio.wrap_file(self.file)
        await reader.seek(0)
        remaining = self.size_bytes
        while remaining > 0:
            chunk = await reader.read(min(chunk_bytes, remaining))
            if not chunk:
                raise LocalFileError(self.field, self.source, "the file shrank while it was being uploaded")
            remaining -= len(chunk)
            yield chunk
        if await reader.read(1):
            raise LocalFileError(self.field, self.source, "the file grew while it was being uploaded")


@dataclass(frozen=True)
class LocalFilePolicy:
    """The folders whose images may be uploaded (resolved), and the size cap."""

    roots: tuple[Path, ...]
    max_bytes: int
    no_roots_reason: str = _NO_ROOTS_CONFIGURED

    @classmethod
    def for_transport(
        cls,
        configured: tuple[Path, ...] | None,
        transport: Transport | None,
        *,
        max_bytes: int,
        cwd: Path | None = None,
        home: Path | None = None,
    ) -> LocalFilePolicy:
        """The configured roots (APIMP_UPLOAD_ROOTS), or else the transport's default ones."""
        if configured is not None:
            roots = tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in configured))
            reason = _NO_ROOTS_TURNED_OFF
        else:
            roots = default_upload_roots(
                transport,
                cwd=cwd if cwd is not None else Path.cwd(),
                home=home if home is not None else _home(),
            )
            reason = _NO_ROOTS_REMOTE if transport == "streamable-http" else _NO_ROOTS_CONFIGURED
        if roots:
            logger.info("local images may be uploaded from: %s", ", ".join(map(str, roots)))
        else:
            logger.info("local images cannot be uploaded: no folder is allowed")
        return cls(roots=roots, max_bytes=max_bytes, no_roots_reason=reason)

    @classmethod
    def for_principal(cls, roots: Sequence[Path], *, max_bytes: int) -> LocalFilePolicy:
        """The folders the operator mapped to one authenticated caller (none: no local file at all)."""
        resolved = tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in roots))
        return cls(roots=resolved, max_bytes=max_bytes, no_roots_reason=_NO_ROOTS_FOR_PRINCIPAL)

    @asynccontextmanager
    async def open_image(self, source: str, *, field: str) -> AsyncIterator[LocalImage]:
        """Check `source` against every rule and open it; the file is closed when the block ends."""
        image = await anyio.to_thread.run_sync(self._open_checked, source, field)
        try:
            yield image
        finally:
            image.file.close()

    def _open_checked(self, source: str, field: str) -> LocalImage:
        """Blocking: resolve, contain, open, then check the opened file itself (run in a thread)."""
        if not self.roots:
            raise LocalFileError(field, source, self.no_roots_reason)  # before touching the disk at all
        try:
            real = contained_real_path(local_path(source, cwd=Path.cwd()), self.roots)
        except (ValueError, OSError) as exc:
            raise LocalFileError(field, source, str(exc)) from None
        if real is None:
            raise LocalFileError(
                field,
                source,
                f"it is outside the folders this server may read ({', '.join(map(str, self.roots))}). "
                "Copy the image into one of them, or use an image URL (http or https) instead.",
            )
        try:
            # Unbuffered: each read reaches the file, so a change after the check is noticed.
            file = open(real, "rb", buffering=0, opener=_open_no_follow)  # noqa: SIM115  # closed by open_image
        except FileNotFoundError:
            raise LocalFileError(field, source, f"there is no such file ({real})") from None
        except IsADirectoryError:
            raise LocalFileError(field, source, "it is a folder, not an image file") from None
        except OSError as exc:
            raise LocalFileError(field, source, f"it cannot be opened ({exc.strerror or exc})") from None
        try:
            return self._check_opened(file, field, source, real)
        except BaseException:
            file.close()
            raise

    def _check_opened(self, file: IO[bytes], field: str, source: str, real: Path) -> LocalImage:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LocalFileError(field, source, "it is not a regular file")
        if info.st_size > self.max_bytes:
            raise LocalFileError(
                field,
                source,
                f"it is {_size(info.st_size)}, over the {_size(self.max_bytes)} upload limit "
                "(APIMP_UPLOAD_MAX_BYTES). Resize or recompress it, or use an image URL instead.",
            )
        mime_type = sniff_image_type(file.read(SIGNATURE_BYTES))
        if mime_type is None:
            raise LocalFileError(
                field,
                source,
                "it is not a PNG, JPEG, WebP or GIF image (its content starts with none of their "
                "signatures, whatever its extension says). Convert it to PNG or JPEG.",
            )
        return LocalImage(field, source, real, info.st_size, mime_type, file)


def _open_no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | _OPEN_FLAGS)


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no password entry: a service account
        return None


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size} bytes"
