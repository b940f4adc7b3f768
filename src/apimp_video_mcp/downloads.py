"""Saving finished videos to disk: streamed, size-capped and atomic.

Result URLs may expire (APIMP does not say when), so a finished video is saved as soon as it
is seen. A file appears under its final name only when it is complete: it is written to a
temporary name beside it and renamed, so a crash or a cancelled call never leaves a truncated
video that looks finished.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx2

from apimp_video_mcp.errors import DownloadError
from apimp_video_mcp.upstream.client import ApimpClient

_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DEFAULT_EXTENSION: Final = ".mp4"
_KNOWN_EXTENSIONS: Final = frozenset({".mp4", ".mov", ".webm", ".m4v", ".mkv"})


def video_filename(task_id: str, url: str, index: int) -> str:
    """`<task_id>.mp4`, or `<task_id>-2.mp4` for a second video: the task names its files."""
    extension = Path(urlsplit(url).path).suffix.lower()
    if extension not in _KNOWN_EXTENSIONS:
        extension = _DEFAULT_EXTENSION
    stem = _SAFE_NAME.sub("_", task_id).strip("._") or "video"
    suffix = "" if index == 0 else f"-{index + 1}"
    return f"{stem}{suffix}{extension}"


async def download_video(
    client: ApimpClient,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    read_timeout_seconds: float,
    chunk_bytes: int,
) -> Path:
    """Save `url` at `destination`; an existing complete file is kept, so waiting again is free."""
    if await anyio.Path(destination).exists():
        return destination
    await anyio.Path(destination.parent).mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
    try:
        async with client.open_file(url, read_timeout_seconds=read_timeout_seconds) as response:
            if response.status_code >= 400:
                raise DownloadError(_http_failure(response.status_code))
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(_too_large(int(declared), max_bytes))
            written = 0
            async with await anyio.open_file(partial, "wb") as file:
                async for chunk in response.aiter_bytes(chunk_bytes):
                    written += len(chunk)
                    if written > max_bytes:
                        raise DownloadError(_too_large(written, max_bytes))
                    await file.write(chunk)
        await anyio.to_thread.run_sync(os.replace, partial, destination)
    except httpx2.HTTPError as exc:
        raise DownloadError(f"the download failed ({type(exc).__name__}); the URL is still usable") from None
    finally:
        with anyio.CancelScope(shield=True):  # clean up even when the call was cancelled
            await anyio.Path(partial).unlink(missing_ok=True)
    return destination


def _http_failure(status_code: int) -> str:
    if status_code in (403, 404, 410):
        return f"the video URL answered HTTP {status_code}: it has probably expired"
    return f"the video URL answered HTTP {status_code}"


def _too_large(size: int, max_bytes: int) -> str:
    return (
        f"the video is larger than the {max_bytes // (1024 * 1024)} MiB cap ({size} bytes so far); "
        "raise APIMP_DOWNLOAD_MAX_BYTES to save it"
    )
