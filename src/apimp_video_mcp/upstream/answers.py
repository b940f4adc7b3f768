"""Reading what a server we call answers, only up to a size.

httpx2 reads an answer whole before anyone can look at its length, so a server answering without
end (APIMP's gateway, an OAuth issuer's key endpoint) would fill the memory. Streamed and decoded,
an answer is read here only until it passes its cap: a small compressed body cannot unpack into
gigabytes either. What is too large is for the caller to say, in its own terms.
"""

from __future__ import annotations

import httpx2


async def read_at_most(response: httpx2.Response, max_bytes: int) -> bytes:
    """The decoded body of a streamed answer, or its start once it passes `max_bytes`: a result
    longer than `max_bytes` means the answer was too large, and the rest of it was never read."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            break
    return bytes(body)
