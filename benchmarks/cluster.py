"""Benchmark: three instances behind HAProxy on one PostgreSQL, 3,000 concurrent waits on 30 tasks.

Why it exists: a cluster promises one poller per task across all its instances, answers on every
instance as soon as any of them sees a change, and survives losing an instance. This measures it
on the real parts the multi-instance test uses (tests/support/cluster.py: the installed console
script three times, Debian's HAProxy round-robin, a PostgreSQL cluster of its own), with the APIMP
simulator in this process timing every status request.

Three phases, each on fresh tasks that end `--task-duration` seconds after every wait is in flight
and every task has its poller (so the phases poll equally long, whatever the clients' start-up):
1. shared: `--waiters` calls of wait_for_video spread evenly over `--tasks` tasks, through the
   balancer. Completion count, upstream status requests, the latency from each task's finish
   upstream to its last waiter's answer, and each instance's peak RSS (VmHWM, so far).
2. baseline: the same number of tasks with one waiter each: the requests of single pollers.
3. kill: as phase 1, and as soon as every task has its poller, the instance holding the most
   polling leases gets SIGKILL. Its waiters call again through the balancer. The takeover gap is, per task
   the dead instance polled, the time from its last status request before the kill to the first
   one after; lost tasks are those not every waiter saw finish.

    .venv/bin/python -m benchmarks.cluster [--tasks 30] [--waiters 3000] [--clients 300]
        [--task-duration 20]

Figures are printed, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import psycopg
from mcp import Client
from psycopg import sql
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.support.cluster import Cluster, haproxy_binary, running_cluster
from tests.support.postgres import binaries, start_postgres, with_database
from tests.support.processes import child_environment

from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_app
from benchmarks._machine import load_average, print_header

MODEL: Final = "veo-3.0-fast-generate-001"
STATUS_PREFIX: Final = "/api/generate/status/"
RETRY_PAUSE_SECONDS: Final = 0.2
LEASE_PROBE_SECONDS: Final = 0.1
TARGET_RATIO: Final = 1.2
TARGET_TAKEOVER_SECONDS: Final = 10.0
NEVER_SECONDS: Final = 86400.0
WAIT_SECONDS: Final = 3000.0  # within the tool's limit; the tasks end long before
# Once every call is in flight, let them settle into their streams before the clock starts.
IN_FLIGHT_SETTLE_SECONDS: Final = 1.0


class StatusLog:
    """ASGI middleware in front of the simulator: when each status request arrived, per task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(STATUS_PREFIX):
            self.times[path.removeprefix(STATUS_PREFIX)].append(time.monotonic())
        await self.app(scope, receive, send)

    def count(self, task_ids: list[str]) -> int:
        return sum(len(self.times[task_id]) for task_id in task_ids)


@dataclass
class Call:
    task_id: str
    started: bool = False
    answered_at: float | None = None
    status: str | None = None
    broken: int = 0


@dataclass
class Phase:
    task_ids: list[str]
    calls: list[Call] = field(default_factory=list)


async def submit(cluster: Cluster, simulator: Simulator, count: int) -> list[str]:
    """Tasks that end only when `end_when_in_flight` says, so every phase polls them equally long."""
    simulator.task_duration_seconds = NEVER_SECONDS
    async with Client(cluster.url) as client:
        results = [
            await client.call_tool("submit_video", {"model": MODEL, "input": {"prompt": f"a harbour {n}"}})
            for n in range(count)
        ]
    return [str((result.structured_content or {})["task_id"]) for result in results]


async def wait_all(cluster: Cluster, phase: Phase, waiters: int, clients: int, wait_seconds: float) -> None:
    """`waiters` calls spread over the tasks, carried by `clients` connections, all at once."""
    phase.calls = [Call(phase.task_ids[n % len(phase.task_ids)]) for n in range(waiters)]
    per_client = [phase.calls[n::clients] for n in range(clients)]

    async def one_client(calls: list[Call]) -> None:
        pending = list(calls)
        while pending:
            try:
                async with Client(cluster.url) as client, anyio.create_task_group() as group:
                    for call in pending:
                        group.start_soon(wait_one, client, call, wait_seconds)
            except Exception:  # the instance died under some calls: call again through the balancer
                await anyio.sleep(RETRY_PAUSE_SECONDS)
            for call in pending:
                if call.answered_at is None:
                    call.broken += 1
            pending = [call for call in pending if call.answered_at is None]

    async with anyio.create_task_group() as group:
        for calls in per_client:
            group.start_soon(one_client, calls)


async def wait_one(client: Client, call: Call, wait_seconds: float) -> None:
    call.started = True
    result = await client.call_tool(
        "wait_for_video", {"task_id": call.task_id, "timeout_seconds": wait_seconds, "download": False}
    )
    content: dict[str, Any] = result.structured_content or {}
    if content.get("done"):
        call.status, call.answered_at = str(content["status"]), time.monotonic()


def finish_to_last_answer(simulator: Simulator, phase: Phase) -> list[float]:
    last: dict[str, float] = {}
    for call in phase.calls:
        if call.answered_at is not None:
            last[call.task_id] = max(last.get(call.task_id, 0.0), call.answered_at)
    return [
        last[task_id] - simulator.tasks[task_id].finished_at(simulator.time_scale)
        for task_id in phase.task_ids
        if task_id in last
    ]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def lease_owners(url: str) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("SELECT task_id, owner FROM task_polls")
        return dict(await cursor.fetchall())


@asynccontextmanager
async def database() -> AsyncIterator[str]:
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: bash .ci/install-services.sh")
    server = start_postgres(bin_dir)
    try:
        name = f"apimp_bench_{secrets.token_hex(4)}"
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield with_database(server.url, name)
    finally:
        server.stop()


def describe(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


async def run(args: argparse.Namespace) -> None:
    haproxy = haproxy_binary()
    if haproxy is None:
        raise SystemExit("HAProxy is not installed: bash .ci/install-services.sh")
    simulator = Simulator(task_duration_seconds=NEVER_SECONDS)
    log = StatusLog(simulator.app)
    with tempfile.TemporaryDirectory(prefix="apimp-cluster-bench-") as workdir:
        async with database() as url, running_app(log, before_stop=simulator.cancel_delays) as base_url:
            environment = child_environment(
                APIMP_API_KEY=SIMULATOR_API_KEY,
                APIMP_BASE_URL=base_url,
                APIMP_JOURNAL=url,
                APIMP_HTTP_STATELESS="on",
                # As `--simulate` does: a demo task takes seconds, so polls stay within a quarter of it.
                APIMP_POLL_MAX_INTERVAL=str(args.task_duration / 4),
                APIMP_WAIT_TIMEOUT=str(WAIT_SECONDS),
            )
            started = time.monotonic()
            async with running_cluster(environment, Path(workdir), instances=3, haproxy=haproxy) as cluster:
                print(
                    f"cluster ready in {time.monotonic() - started:.1f} s (3 instances, HAProxy, PostgreSQL)"
                )
                await phases(args, cluster, simulator, log, url)


async def in_flight(phase: Phase, waiters: int, url: str, tasks: int) -> dict[str, str]:
    """Wait until every call has started and every task has its poller; the lease owners then."""
    # A database and a set of client calls have no event to wait on: poll both.
    while len(phase.calls) < waiters or not all(call.started for call in phase.calls):  # noqa: ASYNC110
        await anyio.sleep(LEASE_PROBE_SECONDS)
    while len(owners := await lease_owners(url)) < tasks:  # noqa: ASYNC110
        await anyio.sleep(LEASE_PROBE_SECONDS)
    await anyio.sleep(IN_FLIGHT_SETTLE_SECONDS)
    return owners


async def run_phase(
    cluster: Cluster, simulator: Simulator, url: str, args: argparse.Namespace, *, waiters: int, clients: int
) -> Phase:
    """Tasks, their waits in flight, then `--task-duration` seconds of polling before they end."""
    phase = Phase(await submit(cluster, simulator, args.tasks))
    wait_seconds = WAIT_SECONDS
    async with anyio.create_task_group() as group:
        group.start_soon(wait_all, cluster, phase, waiters, clients, wait_seconds)
        await in_flight(phase, waiters, url, args.tasks)
        await anyio.sleep(args.task_duration)
        for task_id in phase.task_ids:
            simulator.finish_now(task_id)
    return phase


async def phases(
    args: argparse.Namespace, cluster: Cluster, simulator: Simulator, log: StatusLog, url: str
) -> None:
    # 1. shared
    shared = await run_phase(cluster, simulator, url, args, waiters=args.waiters, clients=args.clients)
    finished = sum(call.status == "finished" for call in shared.calls)
    shared_requests = log.count(shared.task_ids)
    print(f"\n[shared] {args.waiters} waits on {args.tasks} tasks through the balancer")
    print(f"  completed: {finished}/{len(shared.calls)} finished")
    print(f"  upstream status requests: {shared_requests} ({shared_requests / args.tasks:.1f} per task)")
    print(f"  upstream finish -> last waiter's answer: {describe(finish_to_last_answer(simulator, shared))}")
    for instance in cluster.instances:
        rss = peak_rss_mb(instance.process.pid)
        print(f"  {instance.name} (pid {instance.process.pid}) peak RSS: {rss:.0f} MB")

    # 2. baseline: single pollers
    baseline = await run_phase(cluster, simulator, url, args, waiters=args.tasks, clients=args.tasks)
    baseline_requests = log.count(baseline.task_ids)
    ratio = shared_requests / baseline_requests if baseline_requests else float("nan")
    print(f"\n[baseline] {args.tasks} tasks, one waiter each: {baseline_requests} status requests")
    print(f"  shared / single pollers: {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    print(f"  upstream finish -> the waiter's answer: {describe(finish_to_last_answer(simulator, baseline))}")

    # 3. kill
    killed = Phase(await submit(cluster, simulator, args.tasks))
    async with anyio.create_task_group() as group:
        group.start_soon(wait_all, cluster, killed, args.waiters, args.clients, WAIT_SECONDS)
        owners = await in_flight(killed, args.waiters, url, args.tasks)
        counts: dict[str, int] = defaultdict(int)
        for owner in owners.values():
            counts[owner] += 1
        victim_owner = max(counts, key=counts.__getitem__)
        victim = cluster.instance_with_pid(int(victim_owner.split(":")[1]))
        victims_tasks = [task_id for task_id, owner in owners.items() if owner == victim_owner]
        killed_at = time.monotonic()
        victim.kill()
        print(f"\n[kill] SIGKILL to {victim.name}, which polled {len(victims_tasks)} of {args.tasks} tasks")
        await anyio.sleep(args.task_duration)
        for task_id in killed.task_ids:
            simulator.finish_now(task_id)
    gaps = []
    for task_id in victims_tasks:
        times = log.times[task_id]
        before = [at for at in times if at <= killed_at]
        after = [at for at in times if at > killed_at]
        if before and after:
            gaps.append(after[0] - before[-1])
    lost = {call.task_id for call in killed.calls if call.status != "finished"}
    print(
        f"  completed: {sum(call.status == 'finished' for call in killed.calls)}/{len(killed.calls)} finished"
    )
    print(f"  calls broken by the kill and made again: {sum(call.broken for call in killed.calls)}")
    print(f"  takeover gap (last poll before the kill -> first after), per task: {describe(gaps)}")
    print(f"  (target < {TARGET_TAKEOVER_SECONDS:g} s; {len(gaps)} of {len(victims_tasks)} tasks measured)")
    print(f"  lost tasks: {len(lost)} (target 0)")
    print(f"  upstream status requests: {log.count(killed.task_ids)}")
    print(f"  upstream finish -> last waiter's answer: {describe(finish_to_last_answer(simulator, killed))}")
    print(f"\nload average at the end: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--waiters", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=300, help="connections carrying the waits")
    parser.add_argument("--task-duration", type=float, default=20.0)
    parser.add_argument(
        "--kill-after", type=float, default=2.0, help="seconds after every task has its poller"
    )
    args = parser.parse_args()
    print_header("benchmarks.cluster", " ".join(["python -m benchmarks.cluster", *sys.argv[1:]]))
    anyio.run(run, args)


if __name__ == "__main__":
    main()
