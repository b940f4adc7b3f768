"""A multipart/form-data request body that streams one file from disk.

httpx2 streams a file object passed in `files=` 64 KiB at a time (it never reads the whole file),
but it reads each chunk with a blocking call on the event loop. This body takes its chunks from an
async source instead (ours reads them in a worker thread), declares its exact Content-Length up
front, since an upload endpoint need not accept chunked transfer encoding, and can be sent again
from the start, so an upload can be retried.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Final

# The HTML5 form encoding of a quoted header parameter, as browsers and httpx2 apply it.
_QUOTED_SPECIALS: Final = re.compile(r'["\\\r\n]')
_REPLACEMENTS: Final = {'"': "%22", "\\": "\\\\", "\r": "%0D", "\n": "%0A"}

ChunkSource = Callable[[], AsyncIterator[bytes]]


def _quoted(value: str) -> str:
    return '"' + _QUOTED_SPECIALS.sub(lambda match: _REPLACEMENTS[match.group(0)], value) + '"'


class MultipartFileBody:
    """`--boundary`, one file part, `--boundary--`: an async iterable of bytes for httpx2's `content=`.

    `chunks` must yield exactly `size_bytes` bytes each time it is called (or raise): the
    Content-Length is computed from it before the first byte is sent.
    """

    def __init__(
        self,
        *,
        field: str,
        filename: str,
        content_type: str,
        size_bytes: int,
        chunks: ChunkSource,
        boundary: str | None = None,
    ) -> None:
        self.filename = filename
        self.boundary = boundary or secrets.token_hex(16)
        self._chunks = chunks
        self._head = (
            f"--{self.boundary}\r\n"
            f"Content-Disposition: form-data; name={_quoted(field)}; filename={_quoted(filename)}\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.content_length = len(self._head) + size_bytes + len(self._tail)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers that describe this body (an explicit length turns chunking off)."""
        return {
            "content-type": f"multipart/form-data; boundary={self.boundary}",
            "content-length": str(self.content_length),
        }

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._head
        async for chunk in self._chunks():
            yield chunk
        yield self._tail
