"""End to end: the installed console script, spawned for real, over stdio and streamable HTTP.

These tests prove what a host sees: the process starts from its environment, lists its tools,
submits to the (simulated) upstream, and streams progress while it waits, in both protocol eras.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from apimp_video_mcp.simulator import SIMULATOR_API_KEY, sample_video
from tests.support import Mode, Upstream, structured
from tests.support.processes import child_environment, console_script, http_server_process, server_environment

pytestmark = pytest.mark.anyio


async def generate_one_video(client: Client) -> tuple[dict[str, object], list[float]]:
    tools = await client.list_tools()
    assert {tool.name for tool in tools.tools} >= {"submit_video", "get_status", "wait_for_video"}
    submitted = structured(
        await client.call_tool(
            "submit_video", {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "waves on a beach"}}
        )
    )
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    waited = structured(
        await client.call_tool(
            "wait_for_video", {"task_id": submitted["task_id"]}, progress_callback=on_progress
        )
    )
    return waited, reported


@pytest.mark.each_era
async def test_the_console_script_serves_stdio(upstream: Upstream, tmp_path: Path, mode: Mode) -> None:
    parameters = StdioServerParameters(
        command=console_script(), args=[], env=server_environment(upstream, tmp_path / "videos")
    )
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(30):
        async with Client(stdio_client(parameters, errlog=errlog), mode=mode) as client:
            waited, progress = await generate_one_video(client)

    assert waited["status"] == "finished"
    assert progress
    assert progress[-1] == 100
    assert Path(str(waited["saved_videos"][0]["path"])).is_file()  # type: ignore[index]
    assert SIMULATOR_API_KEY not in (tmp_path / "stderr.log").read_text()


@pytest.mark.each_era
async def test_the_console_script_serves_streamable_http(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    async with http_server_process(upstream, tmp_path / "videos") as server:
        with anyio.fail_after(30):
            async with Client(server.url, mode=mode) as client:
                waited, progress = await generate_one_video(client)

    assert waited["status"] == "finished"
    assert progress
    assert progress[-1] == 100
    assert all(later > earlier for earlier, later in itertools.pairwise(progress))


async def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = await anyio.run_process([sys.executable, "-m", "apimp_video_mcp", "--help"], check=False)

    assert result.returncode == 0
    assert b"--transport" in result.stdout
    assert b"--simulate" in result.stdout


async def test_simulate_mode_over_stdio_works_with_no_key_at_all(tmp_path: Path) -> None:
    """What mcp.json's simulator entry runs: stdout must carry nothing but the protocol."""
    parameters = StdioServerParameters(
        command=console_script(),
        args=["--simulate", "--task-duration", "0.3", "--log-level", "DEBUG"],
        env=child_environment(
            APIMP_DOWNLOAD_DIR=str(tmp_path / "videos"), APIMP_JOURNAL=str(tmp_path / "journal.sqlite3")
        ),
    )
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(30):
        async with Client(stdio_client(parameters, errlog=errlog)) as client:
            waited, _ = await generate_one_video(client)

    assert waited["status"] == "finished"
    assert waited["download_error"] is None  # the simulator's own host is allowed, and only it
    saved = waited["saved_videos"]
    assert isinstance(saved, list)
    assert [Path(video["path"]).read_bytes() for video in saved] == [sample_video()]
    assert "simulate mode" in (tmp_path / "stderr.log").read_text()
