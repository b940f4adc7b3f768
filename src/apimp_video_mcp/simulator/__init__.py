"""A local APIMP: the task API's contract, a progress model, fault injection and uploads.

`Simulator` is the ASGI app with its state (`app`), `serving` runs it (or any ASGI app) on
loopback for a block of code. It keeps its own copy of the contract on purpose, so a mistake in
the client's models cannot hide behind the same mistake in the upstream it is tested against.
"""

from apimp_video_mcp.simulator.app import (
    SIMULATOR_API_KEY,
    ReceivedRequest,
    Simulator,
    sample_video,
    veo_like_duration,
)
from apimp_video_mcp.simulator.progress import PROGRESS_SHAPES, ProgressShape
from apimp_video_mcp.simulator.serving import running_app, running_simulator, serve_simulator

__all__ = [
    "PROGRESS_SHAPES",
    "SIMULATOR_API_KEY",
    "ProgressShape",
    "ReceivedRequest",
    "Simulator",
    "running_app",
    "running_simulator",
    "sample_video",
    "serve_simulator",
    "veo_like_duration",
]
