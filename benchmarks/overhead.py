"""Benchmark 4: what a get_status call through MCP adds to the HTTP request it makes.

The same status query, alternated: through this MCP server (the SDK's in-memory Client, so the
figure is the protocol's and the server's own cost), directly with httpx2 against the same
simulator, and through a bare MCPServer tool that makes the same request and returns its JSON
(the SDK's own floor, which no server built on it can go under). The task stays running, so
every call really reaches the upstream.

    python -m benchmarks.overhead [--calls 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.server import MCPServer
from pydantic import SecretStr

from apimp_video_mcp.config import Settings
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator
from benchmarks._machine import print_header

TARGET_ADDED_MILLISECONDS = 2.0
WARMUP_CALLS = 50


def bare_server(http: httpx2.AsyncClient, auth: dict[str, str]) -> MCPServer:
    """The least an MCP tool can do for the same answer: one request, its JSON back as is."""
    bare = MCPServer("bare")

    @bare.tool()
    async def get_status(task_id: str) -> dict[str, object]:
        response = await http.get(f"/api/generate/status/{task_id}", headers=auth)
        data: dict[str, object] = response.json()["data"]
        return data

    return bare


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[int(fraction * (len(ordered) - 1))]


async def run(calls: int) -> None:
    simulator = Simulator(task_duration_seconds=86_400.0)
    auth = {"authorization": f"Bearer {SIMULATOR_API_KEY}"}
    with tempfile.TemporaryDirectory() as workdir:
        async with running_simulator(simulator) as base_url, httpx2.AsyncClient(base_url=base_url) as http:
            settings = Settings(
                api_key=SecretStr(SIMULATOR_API_KEY),
                base_url=base_url,
                download_dir=Path(workdir) / "videos",
                journal_path=str(Path(workdir) / "journal.sqlite3"),
            )
            async with Client(build_server(settings)) as client, Client(bare_server(http, auth)) as bare:
                submitted = await client.call_tool(
                    "submit_video", {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a render"}}
                )
                assert submitted.structured_content is not None
                task_id = str(submitted.structured_content["task_id"])
                path = f"/api/generate/status/{task_id}"
                through_mcp: list[float] = []
                through_bare: list[float] = []
                direct: list[float] = []
                for call in range(WARMUP_CALLS + calls):
                    started = time.perf_counter()
                    result = await client.call_tool("get_status", {"task_id": task_id})
                    mcp_ms = (time.perf_counter() - started) * 1000
                    assert not result.is_error, result
                    started = time.perf_counter()
                    response = await http.get(path, headers=auth)
                    direct_ms = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200
                    started = time.perf_counter()
                    assert not (await bare.call_tool("get_status", {"task_id": task_id})).is_error
                    bare_ms = (time.perf_counter() - started) * 1000
                    if call >= WARMUP_CALLS:
                        through_mcp.append(mcp_ms)
                        direct.append(direct_ms)
                        through_bare.append(bare_ms)
    added = [mcp - http_ms for mcp, http_ms in zip(through_mcp, direct, strict=True)]
    added_by_sdk = [bare_ms - http_ms for bare_ms, http_ms in zip(through_bare, direct, strict=True)]
    print(f"calls: {calls} of each, alternated, after {WARMUP_CALLS} warm-up calls")
    print(f"{'':<34} {'median ms':>10} {'p90 ms':>8}")
    for label, values in (
        ("direct httpx2 request", direct),
        ("get_status through this server", through_mcp),
        ("same request in a bare SDK tool", through_bare),
        ("added by this server (vs direct)", added),
        ("added by a bare SDK tool", added_by_sdk),
    ):
        print(f"{label:<34} {statistics.median(values):>10.2f} {percentile(values, 0.9):>8.2f}")
    measured = statistics.median(added)
    print()
    print(f"target: median added latency <= {TARGET_ADDED_MILLISECONDS:g} ms   measured: {measured:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    print_header("get_status overhead through MCP", "python -m benchmarks.overhead")
    anyio.run(run, args.calls)


if __name__ == "__main__":
    main()
