"""A cluster on loopback: instances of the console script on one PostgreSQL, HAProxy in front.

Shared by the multi-instance test (`tests/test_cluster.py`) and `benchmarks.cluster`. Every
instance is the installed `apimp-video-mcp` serving streamable HTTP on a free loopback port;
HAProxy (Debian's package) balances them round-robin and checks each one's `/readyz`, exactly as
the README's "Run it as a cluster" configures it. Everything started here is stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import httpx2
from anyio.abc import Process

from tests.support.processes import console_script, free_port

# Generous: three Python servers start at once, and a loaded 2-core machine takes its time.
STARTUP_TIMEOUT_SECONDS: Final = 90.0

# The balancer configuration the README documents (with the ports filled in). `retry-on
# conn-failure` retries only a request that never reached an instance, so a submit is never sent
# twice (a dead instance refuses connections, so a request is redispatched at once); the health
# check takes an instance out of rotation after 3 s without a ready answer.
HAPROXY_CONFIG: Final = """\
global
    maxconn 8000

defaults
    mode http
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    retries 3
    option redispatch
    retry-on conn-failure

frontend mcp
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    timeout check 5s
    default-server check inter 1s fall 3 rise 1
{servers}
"""


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(path).exists()), None
    )


@dataclass
class Instance:
    name: str
    port: int
    process: Process

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back, connections cut mid-response."""
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)


@dataclass
class Cluster:
    url: str  # the balancer's MCP endpoint
    balancer: Process
    instances: list[Instance]

    def instance_with_pid(self, pid: int) -> Instance:
        return next(instance for instance in self.instances if instance.process.pid == pid)


@asynccontextmanager
async def running_cluster(
    environment: Mapping[str, str], workdir: Path, *, instances: int = 3, haproxy: str
) -> AsyncIterator[Cluster]:
    """`instances` servers with `environment`, ready, behind HAProxy; all stopped on exit."""
    async with AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(_instance(f"i{number}", environment, workdir))
            for number in range(1, instances + 1)
        ]
        async with anyio.create_task_group() as group:
            for instance in started:
                group.start_soon(_wait_until_ready, instance)
        port = free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                port=port,
                servers="\n".join(f"    server {i.name} 127.0.0.1:{i.port}" for i in started),
            )
        )
        balancer = await stack.enter_async_context(_process([haproxy, "-db", "-f", str(config)], os.environ))
        url = f"http://127.0.0.1:{port}"
        with anyio.fail_after(STARTUP_TIMEOUT_SECONDS):
            await _until_answers(f"{url}/readyz", balancer)
        yield Cluster(url=f"{url}/mcp", balancer=balancer, instances=started)


@asynccontextmanager
async def _instance(name: str, environment: Mapping[str, str], workdir: Path) -> AsyncIterator[Instance]:
    port = free_port()
    command = [console_script(), "--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)]
    env = {**environment, "APIMP_DOWNLOAD_DIR": str(workdir / name / "videos")}
    async with _process(command, env) as process:
        yield Instance(name, port, process)


@asynccontextmanager
async def _process(command: list[str], env: Mapping[str, str]) -> AsyncIterator[Process]:
    process = await anyio.open_process(command, env=dict(env), stdout=subprocess.DEVNULL, stderr=None)
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            process.terminate()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _wait_until_ready(instance: Instance) -> None:
    with anyio.fail_after(STARTUP_TIMEOUT_SECONDS):
        await _until_answers(f"{instance.base_url}/readyz", instance.process)


async def _until_answers(url: str, process: Process) -> None:
    async with httpx2.AsyncClient() as probe:
        while True:
            assert process.returncode is None, f"{url}: the process exited during start-up"
            with suppress(httpx2.TransportError):
                if (await probe.get(url)).status_code == 200:
                    return
            await anyio.sleep(0.05)
