"""Local images and the submit lock: a submit over a limit uploads nothing, and an upload in progress
holds no lock, so the caller's other submits go on meanwhile (the lock is held for a few journal
statements, across every instance of a cluster; a network upload must not stall them all).

The upstream is the simulator on loopback, behind a gate that can hold its upload requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from apimp_video_mcp.access.principals import Limits, Principal
from apimp_video_mcp.errors import LimitExceededError
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.simulator import Simulator, running_app
from apimp_video_mcp.store import SqliteTaskStore
from tests.support import fast_settings
from tests.support.services import running_service
from tests.support.uploads import submit_arguments

pytestmark = pytest.mark.anyio

UPLOADS = "/api/common/upload"
SUBMITS = "/api/generate/submit"
PLAIN = SubmitRequest.model_validate(submit_arguments())


class UploadGate:
    """The simulator, except that each upload request waits until the gate opens."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.upload_waiting = anyio.Event()
        self.open = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(UPLOADS):
            self.upload_waiting.set()
            await self.open.wait()
        await self.simulator.app(scope, receive, send)


@pytest.fixture
async def gate(simulator: Simulator) -> AsyncIterator[tuple[UploadGate, str]]:
    upstream = UploadGate(simulator)
    try:
        async with running_app(upstream) as base_url:
            yield upstream, base_url
    finally:
        upstream.open.set()


@pytest.fixture
async def service(gate: tuple[UploadGate, str], tmp_path: Path) -> AsyncIterator[VideoService]:
    settings = fast_settings(gate[1], tmp_path / "videos")
    journal = SqliteTaskStore(settings.journal_path)
    async with running_service(settings, journal) as running:
        yield running
    await journal.close()


def with_image(png: Path) -> SubmitRequest:
    return SubmitRequest.model_validate(submit_arguments(image=str(png)))


async def test_a_submit_over_a_limit_uploads_nothing(
    service: VideoService, simulator: Simulator, gate: tuple[UploadGate, str], allowed: Path, png: Path
) -> None:
    gate[0].open.set()
    limited = Principal("key:limited", limits=Limits(max_running_tasks=1), upload_roots=(allowed,))
    await service.submit(PLAIN, principal=limited)

    with pytest.raises(LimitExceededError):
        await service.submit(with_image(png), principal=limited)

    assert simulator.requests_to(UPLOADS) == []
    assert len(simulator.requests_to(SUBMITS)) == 1


async def test_an_upload_in_progress_holds_no_lock(
    service: VideoService, simulator: Simulator, gate: tuple[UploadGate, str], allowed: Path, png: Path
) -> None:
    upstream = gate[0]
    limited = Principal("key:limited", limits=Limits(max_running_tasks=3), upload_roots=(allowed,))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: service.submit(with_image(png), principal=limited))
            await upstream.upload_waiting.wait()
            # The image is still uploading: the caller's other submit is checked and sent meanwhile.
            await service.submit(PLAIN, principal=limited)
            assert len(simulator.requests_to(SUBMITS)) == 1
            upstream.open.set()

    assert len(simulator.requests_to(SUBMITS)) == 2
    assert len(simulator.requests_to(UPLOADS)) == 1
