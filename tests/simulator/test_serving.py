"""The loopback server helper: the simulator on a free port, stopped cleanly at the end of the block."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx2
import pytest

from apimp_video_mcp.simulator import (
    SIMULATOR_API_KEY,
    Simulator,
    running_simulator,
    sample_video,
)
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
SUBMIT = "/api/generate/submit"
STATUS = "/api/generate/status/"


def video(
    prompt: str = "a red fox running through snow", model: str = "veo-3.1-fast-generate-preview"
) -> Any:
    return {"model": model, "input": {"prompt": prompt}}


async def test_over_real_loopback(clock: FakeClock) -> None:
    sim = Simulator(clock=clock)
    async with (
        running_simulator(sim) as base_url,
        httpx2.AsyncClient(base_url=base_url, headers=AUTH, trust_env=False) as c,
    ):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        submitted = await c.post(SUBMIT, json=video())
        task_id = submitted.json()["data"]["task_id"]
        sim.finish_now(task_id)
        data = (await c.get(STATUS + task_id)).json()["data"]
        file_url = data["files"][0]["file_url"]
        assert file_url.startswith(f"{base_url}/files/{task_id}.mp4?token=")
        downloaded = await c.get(file_url)
        assert downloaded.content == sample_video()
        # A slow answer still in flight at shutdown must not hold the server up.
        sim.inject_fault(path_prefix=STATUS, status=200, delay_seconds=60)
        with anyio.move_on_after(0.05):
            await c.get(STATUS + task_id)
    assert [r.path for r in sim.received][:2] == [SUBMIT, STATUS + task_id]


async def test_an_error_in_the_block_is_not_wrapped_in_an_exception_group() -> None:
    with pytest.raises(LookupError, match="boom"):
        async with running_simulator(Simulator()):
            raise LookupError("boom")
