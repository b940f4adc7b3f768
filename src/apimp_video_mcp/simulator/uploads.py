"""The simulator's half of APIMP's Public API: uploads, and the links that serve them back.

Two endpoints store a file: `POST /api/common/upload/stream` (a multipart `file`, optional
`upload_path`) and `POST /api/common/upload/url` (JSON `{"file_url", "upload_path"}`: APIMP fetches
the file). Both answer with the upload envelope, not the generation one: success is
`{"success": true, "code": 200, "msg", "data": {...}}`, an error is FastAPI's `{"detail": ...}`.
Stored files are served, without a key, at their `file_url` until they expire (72 h, as documented).
The `Simulator` mounts these handlers behind its request recorder and fault injection.
"""

from __future__ import annotations

import json
import mimetypes
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import urlsplit

import httpx2
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

UPLOAD_LIFETIME_SECONDS: Final = 72 * 3600.0  # APIMP's docs: uploaded images live 72 h
URL_FETCH_TIMEOUT_SECONDS: Final = 10.0
URL_FETCH_MAX_BYTES: Final = 100 * 1024 * 1024
DEFAULT_UPLOAD_FOLDER: Final = "uploads"

_EXTENSION: Final = re.compile(r"\.[a-z0-9]{1,8}")
_UPLOADS_PATH: Final = re.compile(r"^/uploads/([0-9a-f]+)/")


@dataclass
class StoredUpload:
    """One stored file."""

    file_id: str
    file_name: str
    original_name: str
    content: bytes
    mime_type: str
    upload_path: str
    api_key: str
    uploaded_at: float  # clock() when stored


def _detail(status: int, detail: object) -> JSONResponse:
    """The Public API's error envelope (FastAPI's)."""
    return JSONResponse({"detail": detail}, status)


def _missing(field: str) -> JSONResponse:
    """FastAPI's answer to a missing required field: 422 with a list of problems."""
    return _detail(422, [{"type": "missing", "loc": ["body", field], "msg": "Field required", "input": None}])


class UploadStore:
    """The files uploaded so far, and the handlers that store and serve them."""

    def __init__(
        self,
        *,
        api_key: Callable[[Request], str | None],
        clock: Callable[[], float],
        wall: Callable[[float], str],
        rng: random.Random,
    ) -> None:
        self._api_key = api_key
        self._clock = clock
        self._wall = wall
        self._rng = rng
        self.files: dict[str, StoredUpload] = {}

    async def upload_stream(self, request: Request, body: bytes) -> Response:
        """`POST /api/common/upload/stream`: a multipart form with `file` and maybe `upload_path`."""
        api_key = self._api_key(request)
        if api_key is None:
            return _detail(401, "Invalid API key")
        try:
            async with request.form() as form:
                file, upload_path = form.get("file"), form.get("upload_path")
                if not isinstance(file, UploadFile):
                    return _missing("file")
                content = await file.read()
                name = file.filename or "upload"
                mime_type = file.content_type
        except (HTTPException, MultiPartException):
            return _detail(400, "Invalid file data")
        if not content:
            return _detail(400, "Invalid file data")
        folder = upload_path if isinstance(upload_path, str) else None
        return self._store(request, api_key, content, name, mime_type, folder)

    async def upload_url(self, request: Request, body: bytes) -> Response:
        """`POST /api/common/upload/url`: APIMP fetches `file_url` and stores what it got."""
        api_key = self._api_key(request)
        if api_key is None:
            return _detail(401, "Invalid API key")
        try:
            payload = json.loads(body)
        except ValueError:
            return _detail(400, "Invalid JSON body")
        file_url = payload.get("file_url") if isinstance(payload, dict) else None
        if not isinstance(file_url, str):
            return _missing("file_url")
        if not file_url.startswith(("http://", "https://")):
            return _detail(400, "Invalid file URL: only http and https are supported")
        fetched = await self._fetch(request, file_url)
        if fetched is None:
            return _detail(400, "Failed to download file from URL")
        content, mime_type = fetched
        name = PurePosixPath(urlsplit(file_url).path).name or "download"
        upload_path = payload.get("upload_path")
        folder = upload_path if isinstance(upload_path, str) else None
        return self._store(request, api_key, content, name, mime_type, folder)

    async def serve(self, request: Request, body: bytes) -> Response:
        """`GET /uploads/{file_id}/{name}`: a public link, like a CDN's, until the upload expires."""
        stored = self.files.get(request.path_params["file_id"])
        if stored is None or stored.file_name != request.path_params["name"]:
            return PlainTextResponse("Not Found", 404)
        if self._clock() - stored.uploaded_at >= UPLOAD_LIFETIME_SECONDS:
            return PlainTextResponse("Gone: this upload has expired", 410)
        headers = {"content-length": str(len(stored.content))}
        if request.query_params.get("download"):
            headers["content-disposition"] = f'attachment; filename="{stored.file_name}"'
        content = b"" if request.method == "HEAD" else stored.content
        return Response(content, 200, headers, media_type=stored.mime_type)

    def _store(
        self,
        request: Request,
        api_key: str,
        content: bytes,
        name: str,
        mime_type: str | None,
        upload_path: str | None,
    ) -> Response:
        if upload_path is not None and ".." in upload_path:
            return _detail(400, "Invalid upload path: '..' is not allowed")
        folder = "temp/" + ((upload_path or "").strip("/") or DEFAULT_UPLOAD_FOLDER)
        if not mime_type or mime_type == "application/octet-stream":
            mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        extension = PurePosixPath(name).suffix.lower()
        if not _EXTENSION.fullmatch(extension):
            extension = mimetypes.guess_extension(mime_type) or ""
        file_id = f"{self._rng.getrandbits(128):032x}"
        now = self._clock()
        stored = StoredUpload(
            file_id, f"{file_id}{extension}", name, content, mime_type, folder, api_key, now
        )
        self.files[file_id] = stored
        url = f"{str(request.base_url).rstrip('/')}/uploads/{file_id}/{stored.file_name}"
        data = {
            "file_id": file_id,
            "file_name": stored.file_name,
            "original_name": name,
            "file_size": len(content),
            "mime_type": mime_type,
            "upload_path": folder,
            "file_url": url,
            "download_url": f"{url}?download=1",
            "upload_time": self._wall(now),
            "expires_at": self._wall(now + UPLOAD_LIFETIME_SECONDS),
        }
        return JSONResponse({"success": True, "code": 200, "msg": "File uploaded successfully", "data": data})

    async def _fetch(self, request: Request, url: str) -> tuple[bytes, str | None] | None:
        """The file at `url`: our own uploads from memory (so in-process tests need no network),
        anything else over HTTP, size-capped. None when it cannot be had."""
        parts = urlsplit(url)
        own = _UPLOADS_PATH.match(parts.path) if parts.netloc == request.url.netloc else None
        if own is not None:
            stored = self.files.get(own[1])
            return (stored.content, stored.mime_type) if stored is not None else None
        try:
            async with (
                httpx2.AsyncClient(timeout=URL_FETCH_TIMEOUT_SECONDS, follow_redirects=True) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    return None
                content = bytearray()
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > URL_FETCH_MAX_BYTES:
                        return None
                mime_type = response.headers.get("content-type", "").split(";")[0].strip() or None
                return bytes(content), mime_type
        except httpx2.HTTPError:
            return None
