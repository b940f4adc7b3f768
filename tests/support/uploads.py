"""What the upload tests share: a real PNG built by hand, and submit_video arguments around an image."""

from __future__ import annotations

import struct
import zlib
from typing import Any

VEO = "veo-3.1-fast-generate-preview"


def tiny_png() -> bytes:
    """A valid 1x1 RGB PNG, built by hand so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = tiny_png()


def submit_arguments(**input_: Any) -> dict[str, Any]:
    return {"model": VEO, "input": {"prompt": "the scene comes alive, slow push in", **input_}}
