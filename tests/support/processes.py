"""Spawning the installed console script as a host would: its environment, stdio, or HTTP on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
from anyio.abc import Process

from apimp_video_mcp.downloads.network import allowance_for
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from tests.support import Upstream, missing_system_package


def needed(found: str | None, what: str) -> str:
    """A tool the test cannot run without: skipped locally when missing, a failure under CI=true."""
    if found is None or not Path(found).exists():
        missing_system_package(f"{what} is missing")
    return found


def child_environment(**variables: str) -> dict[str, str]:
    """A spawned server's whole environment, as a host's 'env' block would give it: PATH and the
    variables given, plus coverage's own (when the suite measures coverage, so it measures the
    child too)."""
    measuring = {name: value for name, value in os.environ.items() if name.startswith("COVERAGE_")}
    return {"PATH": str(Path(sys.executable).parent), **measuring, **variables}


def console_script() -> str:
    script = shutil.which("apimp-video-mcp", path=str(Path(sys.executable).parent))
    assert script is not None, "the project must be installed: pip install -e '.[test]'"
    return script


def server_environment(upstream: Upstream, download_dir: Path) -> dict[str, str]:
    """What a host's 'env' block would give the server: the child inherits nothing else."""
    return child_environment(
        APIMP_API_KEY=SIMULATOR_API_KEY,
        APIMP_BASE_URL=upstream.base_url,
        APIMP_DOWNLOAD_ALLOWED_HOSTS=allowance_for(upstream.base_url),
        APIMP_DOWNLOAD_DIR=str(download_dir),
        APIMP_JOURNAL=str(download_dir.with_name("journal.sqlite3")),
        APIMP_POLL_MIN_INTERVAL="0.02",
        APIMP_POLL_MAX_INTERVAL="0.05",
        APIMP_PROGRESS_INTERVAL="0.02",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# A bound for a hung start, not an expectation: a spawn takes about 1.5 s on an idle machine, but
# on a loaded 2-core one, with both xdist workers spawning servers, it has taken over 20 s.
SERVER_STARTUP_TIMEOUT_SECONDS = 60


@dataclass
class ServerProcess:
    url: str
    process: Process


@asynccontextmanager
async def http_server_process(upstream: Upstream, download_dir: Path) -> AsyncIterator[ServerProcess]:
    """The console script serving streamable HTTP on a free loopback port, stopped on exit."""
    port = free_port()
    command = [console_script(), "--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)]
    process = await anyio.open_process(
        command, env=server_environment(upstream, download_dir), stdout=subprocess.DEVNULL, stderr=None
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with anyio.fail_after(SERVER_STARTUP_TIMEOUT_SECONDS):
            async with httpx2.AsyncClient() as probe:
                while True:
                    assert process.returncode is None, "the server exited during start-up"
                    try:
                        await probe.get(url)
                        break
                    except httpx2.TransportError:
                        await anyio.sleep(0.05)
        yield ServerProcess(url, process)
    finally:
        with suppress(ProcessLookupError):
            process.terminate()
        with anyio.fail_after(10), anyio.CancelScope(shield=True):
            await process.wait()
