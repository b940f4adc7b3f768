"""Local images into hosted URLs: the upload_image tool, and local paths given to submit_video.

Every local reference in a request is checked and opened before anything is sent, so one bad path
refuses the whole call with no upload and no submit. Then each file is uploaded (once, even when
named twice), and the request APIMP receives carries the hosted URLs in place of the paths, with
everything else exactly as the caller sent it.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Final

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import (
    InvalidRequestError,
    UploadFailedError,
    UpstreamError,
    UpstreamUnreachableError,
)
from apimp_video_mcp.local_files import LocalFilePolicy, LocalImage, is_local_reference
from apimp_video_mcp.models import SubmitRequest, VideoInput
from apimp_video_mcp.results import UploadedImage, UploadResult
from apimp_video_mcp.upstream.client import ApimpClient
from apimp_video_mcp.upstream.multipart import MultipartFileBody

logger = logging.getLogger(__name__)

UPLOAD_FIELD: Final = "file"  # the multipart field APIMP's upload endpoint reads

NEXT_AFTER_UPLOAD: Final = (
    "Next: pass this url as input.image to submit_video before it expires (APIMP deletes uploads "
    "after 72 h). Giving submit_video the local path directly also works: it uploads the file itself."
)


class ImageUploader:
    """Uploads local images through one `ApimpClient`, within one `LocalFilePolicy`."""

    def __init__(
        self,
        client: ApimpClient,
        policy: LocalFilePolicy,
        *,
        chunk_bytes: int = defaults.UPLOAD_CHUNK_BYTES,
    ) -> None:
        self.client = client
        self.policy = policy
        self.chunk_bytes = chunk_bytes

    async def upload(self, source: str) -> UploadResult:
        """One local image to a hosted URL (the upload_image tool)."""
        if not is_local_reference(source):
            raise InvalidRequestError(
                "path",
                "it is already a URL: pass it to submit_video as input.image directly. upload_image is "
                "for local files.",
            )
        async with self.policy.open_image(source, field="path") as image:
            uploaded = await self._send(image, submitting=False)
        return UploadResult(**uploaded.model_dump(), next_step=NEXT_AFTER_UPLOAD)

    async def check(self, request: SubmitRequest) -> None:
        """Apply every local-file rule to the request's images, uploading nothing (a quote's checks)."""
        async with AsyncExitStack() as stack:
            for field, source in _local_references(request.input):
                await stack.enter_async_context(self.policy.open_image(source, field=field))

    async def localize(self, request: SubmitRequest) -> tuple[SubmitRequest, list[UploadedImage]]:
        """`request` with each local image replaced by its hosted URL, and what was uploaded."""
        references = _local_references(request.input)
        if not references:
            return request, []
        hosted: dict[Path, UploadedImage] = {}
        urls: dict[str, str] = {}
        async with AsyncExitStack() as stack:
            opened = [
                (field, await stack.enter_async_context(self.policy.open_image(source, field=field)))
                for field, source in references
            ]
            # Every file passed every check: only now does anything leave the machine.
            for field, image in opened:
                if image.path not in hosted:
                    hosted[image.path] = await self._send(image, submitting=True)
                urls[field] = hosted[image.path].url
        data = request.input
        updates: dict[str, object] = {}
        if "input.image" in urls:
            updates["image"] = urls["input.image"]
        if data.images is not None:
            updates["images"] = [
                urls.get(f"input.images[{index}]", item) for index, item in enumerate(data.images)
            ]
        localized = request.model_copy(update={"input": data.model_copy(update=updates)})
        return localized, list(hosted.values())

    async def _send(self, image: LocalImage, *, submitting: bool) -> UploadedImage:
        body = MultipartFileBody(
            field=UPLOAD_FIELD,
            filename=image.upload_name,
            content_type=image.mime_type,
            size_bytes=image.size_bytes,
            chunks=lambda: image.chunks(self.chunk_bytes),
        )
        try:
            stored = await self.client.upload_file(body)
        except (UpstreamError, UpstreamUnreachableError) as exc:
            raise UploadFailedError(image.source, str(exc), submitting=submitting) from exc
        logger.info("uploaded %s (%d bytes) as %s", image.path, image.size_bytes, stored.file_url)
        return UploadedImage(
            source=image.source,
            path=str(image.path),
            url=stored.file_url,
            expires_at=stored.expires_at,
            size_bytes=stored.file_size if stored.file_size is not None else image.size_bytes,
            mime_type=stored.mime_type or image.mime_type,
        )


def _local_references(data: VideoInput) -> list[tuple[str, str]]:
    """(field, reference) for every image given as a local path or file:// URL."""
    named = [("input.image", data.image)] if data.image is not None else []
    named += [(f"input.images[{index}]", item) for index, item in enumerate(data.images or [])]
    return [(field, value) for field, value in named if is_local_reference(value)]
