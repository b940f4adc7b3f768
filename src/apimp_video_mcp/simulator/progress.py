"""How a simulated task's progress moves while it runs: the shapes real gateways show.

Google's Veo operations report no percentage, so what APIMP says between submit and the end
depends on the gateway: nothing at all (0 until the end), a straight line, a slow start, a quick
jump then a crawl, or a long stall then a jump. A poll schedule must do well on every one of
them, so the simulator offers them all, per simulator or per task. Each is a function of the
fraction of the running time elapsed (0-1) to the whole percent reported (0-99; 100 only once
finished).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, Literal, get_args

ProgressShape = Literal["eased", "none", "linear", "slow_start", "early_fast", "stalled_then_jumping"]
PROGRESS_SHAPES: Final[tuple[ProgressShape, ...]] = get_args(ProgressShape)


def _eased(f: float) -> int:
    """A quick jump, a long slow middle, then a climb that stops at 99: this simulator's default."""
    quick = (1.0 - math.exp(-8.0 * f)) / (1.0 - math.exp(-8.0))
    return max(1, int(99.0 * (0.6 * quick + 0.4 * f**3)))


def _stalled_then_jumping(f: float) -> int:
    """Stuck at 10% for three quarters of the time, then 90% until the end."""
    return 10 if f < 0.75 else 90


_CURVES: Final[dict[ProgressShape, Callable[[float], int]]] = {
    "eased": _eased,
    "none": lambda f: 0,
    "linear": lambda f: int(99.0 * f),
    "slow_start": lambda f: int(99.0 * f**3),
    "early_fast": lambda f: int(99.0 * (1.0 - (1.0 - f) ** 4)),
    "stalled_then_jumping": _stalled_then_jumping,
}


def progress_at(shape: ProgressShape, fraction: float) -> int:
    """The percent a running task of this shape reports after `fraction` of its running time."""
    return min(99, max(0, _CURVES[shape](min(max(fraction, 0.0), 1.0))))
