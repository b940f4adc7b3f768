"""Draw the bundle's icon, bundle/icon.png: `python bundle/make_icon.py`.

A 512x512 RGBA tile (the size Claude Desktop recommends): a violet-to-blue rounded square with a
white play button and a small spark for "generated". Shapes are signed distance functions, so
edges are anti-aliased without an imaging library; the output is the same bytes on every run.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

SIZE_PX = 512
TILE_MARGIN_PX = 16
TILE_RADIUS_PX = 112
TOP_LEFT_RGB = (109, 40, 217)  # violet
BOTTOM_RIGHT_RGB = (14, 165, 233)  # sky blue
WHITE = (255, 255, 255)

Point = tuple[float, float]

# A play button, nudged right of centre so it looks centred (its mass sits left of its box).
PLAY = ((196.0, 150.0), (196.0, 362.0), (370.0, 256.0))
PLAY_ROUNDING_PX = 18.0
# A four-pointed spark in the upper right.
SPARK_CENTRE = (392.0, 124.0)
SPARK_ARM_PX = 44.0
SPARK_WAIST_PX = 10.0


def rounded_square(x: float, y: float) -> float:
    """Signed distance to the tile (negative inside)."""
    centre = SIZE_PX / 2
    half = centre - TILE_MARGIN_PX - TILE_RADIUS_PX
    qx, qy = abs(x - centre) - half, abs(y - centre) - half
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - TILE_RADIUS_PX


def polygon(x: float, y: float, vertices: Sequence[Point]) -> float:
    """Exact signed distance to a simple polygon (negative inside)."""
    best = (x - vertices[0][0]) ** 2 + (y - vertices[0][1]) ** 2
    sign = 1.0
    previous = vertices[-1]
    for vertex in vertices:
        ex, ey = previous[0] - vertex[0], previous[1] - vertex[1]
        wx, wy = x - vertex[0], y - vertex[1]
        t = min(max((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0), 1.0)
        bx, by = wx - ex * t, wy - ey * t
        best = min(best, bx * bx + by * by)
        crossings = (y >= vertex[1], y < previous[1], ex * wy > ey * wx)
        if all(crossings) or not any(crossings):
            sign = -sign
        previous = vertex
    return sign * math.sqrt(best)


def shrunk(vertices: Sequence[Point], by: float) -> list[Point]:
    """The polygon moved towards its centroid by `by`: rounding it back by `by` keeps its size."""
    cx = sum(v[0] for v in vertices) / len(vertices)
    cy = sum(v[1] for v in vertices) / len(vertices)
    result = []
    for vx, vy in vertices:
        length = math.hypot(vx - cx, vy - cy)
        result.append((vx - (vx - cx) / length * by * 2, vy - (vy - cy) / length * by * 2))
    return result


def spark() -> list[Point]:
    cx, cy = SPARK_CENTRE
    arm, waist = SPARK_ARM_PX, SPARK_WAIST_PX
    return [
        (cx, cy - arm),
        (cx + waist, cy - waist),
        (cx + arm, cy),
        (cx + waist, cy + waist),
        (cx, cy + arm),
        (cx - waist, cy + waist),
        (cx - arm, cy),
        (cx - waist, cy - waist),
    ]


def coverage(distance: float) -> float:
    """How much of a pixel a shape covers, from the distance at its centre (a 1 px ramp)."""
    return min(max(0.5 - distance, 0.0), 1.0)


def blend(under: tuple[float, float, float], over: tuple[int, int, int], alpha: float) -> tuple[float, ...]:
    return tuple(u + (o - u) * alpha for u, o in zip(under, over, strict=True))


def pixel(x: float, y: float, play: Sequence[Point], star: Sequence[Point]) -> bytes:
    tile = coverage(rounded_square(x, y))
    if tile == 0.0:
        return b"\x00\x00\x00\x00"
    along = min(max((x + y) / (2 * SIZE_PX), 0.0), 1.0)
    rgb: tuple[float, ...] = blend(
        (float(TOP_LEFT_RGB[0]), float(TOP_LEFT_RGB[1]), float(TOP_LEFT_RGB[2])), BOTTOM_RIGHT_RGB, along
    )
    rgb = blend((rgb[0], rgb[1], rgb[2]), WHITE, coverage(polygon(x, y, play) - PLAY_ROUNDING_PX))
    rgb = blend((rgb[0], rgb[1], rgb[2]), WHITE, coverage(polygon(x, y, star)) * 0.9)
    return bytes((*(round(channel) for channel in rgb), round(tile * 255)))


def png(width: int, height: int, rows: Sequence[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    play, star = shrunk(PLAY, PLAY_ROUNDING_PX), spark()
    rows = [b"".join(pixel(x + 0.5, y + 0.5, play, star) for x in range(SIZE_PX)) for y in range(SIZE_PX)]
    target = Path(__file__).with_name("icon.png")
    target.write_bytes(png(SIZE_PX, SIZE_PX, rows))
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
