"""The streamed multipart body: an exact length, and a body that can be sent again on a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apimp_video_mcp.upstream.multipart import MultipartFileBody
from tests.support.uploads import PNG

pytestmark = pytest.mark.anyio


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
