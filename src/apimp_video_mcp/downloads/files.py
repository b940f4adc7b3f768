"""Saving one finished video to disk: streamed, size-capped, checked to be a video, and atomic.

Result URLs may expire (APIMP does not say when), so a finished video is saved as soon as it
is seen. A file appears under its final name only when it is complete: it is written to a
temporary name beside it and renamed, so a crash or a cancelled call never leaves a truncated
video that looks finished.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx2

from apimp_video_mcp.errors import DownloadError
from apimp_video_mcp.models import VIDEO_EXTENSIONS

_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DEFAULT_EXTENSION: Final = ".mp4"

SIGNATURE_BYTES: Final = 12  # enough for every signature below (an ISO-BMFF brand ends at byte 12)
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"  # WebM and Matroska
_QUICKTIME_ATOMS: Final = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
# ISO-BMFF brands of still images (HEIF, HEIC, AVIF): a `ftyp` box alone does not make a video.
_IMAGE_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


def video_filename(task_id: str, url: str, index: int) -> str:
    """`<task_id>.mp4`, or `<task_id>-2.mp4` for a second video: the task names its files."""
    extension = Path(urlsplit(url).path).suffix.lower()
    if extension not in VIDEO_EXTENSIONS:
        extension = _DEFAULT_EXTENSION
    stem = _SAFE_NAME.sub("_", task_id).strip("._") or "video"
    suffix = "" if index == 0 else f"-{index + 1}"
    return f"{stem}{suffix}{extension}"


def sniff_video_type(head: bytes) -> str | None:
    """The video type a file's first bytes declare, or None when they are no video's.

    MP4 and its kin (ISO-BMFF: a `ftyp` box first, whose brand is not an image's), QuickTime
    without `ftyp` (an old file starting with its `moov`, `mdat`, `wide` or `free` atom), and
    WebM/Matroska (the EBML magic). A web page, a JSON answer or an image posing as `.mp4` is none.
    """
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if box in _QUICKTIME_ATOMS:
        return "video/quicktime"
    if head.startswith(_EBML_MAGIC):
        return "video/webm"
    return None


def is_video_file(path: Path) -> bool:
    """Whether the file at `path` starts like a video (blocking: call it from a worker thread)."""
    try:
        with path.open("rb") as file:
            return sniff_video_type(file.read(SIGNATURE_BYTES)) is not None
    except OSError:
        return False


def describe_size(size_bytes: int) -> str:
    """`1000-byte`, `512 KiB`, `500 MiB`: a cap under 1 MiB is not "0 MiB"."""
    if size_bytes < 1024:
        return f"{size_bytes}-byte"
    unit, scale = next(
        (unit, scale)
        for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
        if size_bytes >= scale
    )
    return f"{size_bytes / scale:.4g} {unit}"


@dataclass(frozen=True)
class SizeCap:
    """How many bytes a download may write, the limit as the message states it, and its variable."""

    max_bytes: int
    limit: str  # "the 500 MiB cap per video"
    variable: str

    def exceeded(self, size_so_far: int) -> DownloadError:
        return DownloadError(
            f"the video goes past {self.limit} ({size_so_far} bytes so far); "
            f"raise {self.variable} to save it",
            reason="too_large",
        )


async def download_video(
    http: httpx2.AsyncClient,
    url: str,
    destination: Path,
    *,
    cap: SizeCap,
    chunk_bytes: int,
) -> Path:
    """Save `url` at `destination`; an existing complete video is kept, so waiting again is free.

    The file is saved only if its first bytes are a video's: anything else is refused before a
    byte of it is written, so no web page or API answer is ever kept (or served) as a video.
    """
    if await anyio.to_thread.run_sync(is_video_file, destination):
        return destination
    await anyio.Path(destination.parent).mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
    try:
        async with http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise _http_failure(response.status_code)
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > cap.max_bytes:
                raise cap.exceeded(int(declared))
            written = 0
            head = b""
            async with await anyio.open_file(partial, "wb") as file:
                async for chunk in response.aiter_bytes(chunk_bytes):
                    written += len(chunk)
                    if written > cap.max_bytes:
                        raise cap.exceeded(written)
                    if len(head) < SIGNATURE_BYTES:  # hold the first bytes back until they prove a video
                        head += chunk
                        if len(head) < SIGNATURE_BYTES:
                            continue
                        _require_video(head)
                        chunk, head = head, head[:SIGNATURE_BYTES]
                    await file.write(chunk)
                if len(head) < SIGNATURE_BYTES:  # the whole body is shorter than a video's first box
                    raise _not_a_video()
        await anyio.to_thread.run_sync(os.replace, partial, destination)
    except httpx2.HTTPError as exc:
        raise DownloadError(f"the download failed ({type(exc).__name__}); the URL is still usable") from None
    finally:
        with anyio.CancelScope(shield=True):  # clean up even when the call was cancelled
            await anyio.Path(partial).unlink(missing_ok=True)
    return destination


def _require_video(head: bytes) -> None:
    if sniff_video_type(head) is None:
        raise _not_a_video()


def _not_a_video() -> DownloadError:
    return DownloadError(
        "the result file is not a video (its first bytes are no MP4, QuickTime, WebM or Matroska "
        "signature), so it was not saved"
    )


def _http_failure(status_code: int) -> DownloadError:
    if status_code in (403, 404, 410):
        return DownloadError(
            f"the video URL answered HTTP {status_code}: it has probably expired", reason="expired"
        )
    return DownloadError(f"the video URL answered HTTP {status_code}")
