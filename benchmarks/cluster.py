"""Benchmark: three instances behind HAProxy on one PostgreSQL, 3,000 concurrent waits on 30 tasks.

Why it exists: a cluster promises one poller per task across all its instances, answers on every
instance as soon as any of them sees a change, and survives losing an instance. This measures it
on the real parts the multi-instance test uses (tests/support/cluster.py: the installed console
script three times, Debian's HAProxy round-robin, a PostgreSQL cluster of its own), with the APIMP
simulator in this process timing every status request.

The clients (`--clients` SDK clients) run in `--client-processes` worker processes, so that
their own CPU does not throttle this process, which hosts the simulator (benchmarks/_workers.py).

Three phases, each on fresh tasks that end `--task-duration` seconds after every wait is in flight
and every task has its poller (so the phases poll equally long, whatever the clients' start-up):
1. shared: `--waiters` calls of wait_for_video spread evenly over `--tasks` tasks, through the
   balancer. Completion count, upstream status requests, the latency from each task's finish
   upstream (and from the poll that saw it) to its last waiter's answer, the CPU every process
   spent on that fan-out, and each instance's peak RSS (VmHWM, so far).
2. baseline: the same number of tasks with one waiter each: the requests of single pollers.
3. kill: as phase 1, and `--kill-after` seconds after every task has its poller, the instance
   holding the most polling leases gets SIGKILL. A call it cut is made again through the
   balancer. The takeover gap is, per task the dead instance polled, the time from its last
   status request before the kill to the first one after, split into its parts (the lease
   running out, a survivor's claim, its first request); lost tasks are those not every waiter
   saw finish.

    .venv/bin/python -m benchmarks.cluster [--tasks 30] [--waiters 3000] [--clients 300]
        [--client-processes 3] [--task-duration 20] [--kill-after 2]

Figures are printed, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import psycopg
from mcp import Client
from mcp.types import TextContent
from psycopg import sql
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.support.cluster import Cluster, haproxy_binary, running_cluster
from tests.support.postgres import binaries, start_postgres, with_database
from tests.support.processes import child_environment

from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_app
from benchmarks._machine import load_average, print_header, read_process
from benchmarks._workers import Worker, emit, next_message, worker_processes

MODULE: Final = "benchmarks.cluster"
MODEL: Final = "veo-3.0-fast-generate-001"
# One process of SDK clients saturates a core; three keep 3,000 calls from queuing in the clients.
DEFAULT_CLIENT_PROCESSES: Final = 3
PHASE_LIMIT_SECONDS: Final = 900.0  # a phase takes about a minute: a cluster this slow is broken
WORKER_START_TIMEOUT_SECONDS: Final = 300.0  # importing the SDK and starting 1,000 calls, loaded
STATUS_PREFIX: Final = "/api/generate/status/"
RETRY_PAUSE_SECONDS: Final = 0.2
LEASE_PROBE_SECONDS: Final = 0.1
TAKEOVER_WATCH_SECONDS: Final = 60.0
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
    """One wait_for_video call as its client saw it (answered_at from time.monotonic, one clock for
    every process here)."""

    task_id: str
    started: bool = False
    answered_at: float | None = None
    status: str | None = None
    broken: int = 0  # times the call was cut (its instance died) and made again
    errors: int = 0  # tool errors answered (then the call was made again)
    first_error: str | None = None


@dataclass
class Phase:
    task_ids: list[str]
    calls: list[Call] = field(default_factory=list)
    # CPU seconds (user + system) per process, when the tasks finished and once all had answered.
    cpu_at_finish: dict[str, float] = field(default_factory=dict)
    cpu_at_end: dict[str, float] = field(default_factory=dict)


async def submit(cluster: Cluster, simulator: Simulator, count: int) -> list[str]:
    """Tasks that end only when `run_phase` says, so every phase polls them equally long."""
    simulator.task_duration_seconds = NEVER_SECONDS
    async with Client(cluster.url) as client:
        results = [
            await client.call_tool("submit_video", {"model": MODEL, "input": {"prompt": f"a harbour {n}"}})
            for n in range(count)
        ]
    return [str((result.structured_content or {})["task_id"]) for result in results]


def deal(task_ids: list[str], waiters: int, clients: int) -> list[list[str]]:
    """Each client's calls, as the task each one waits on: the waiters evenly over tasks and clients."""
    return [
        [task_ids[n % len(task_ids)] for n in range(client, waiters, clients)] for client in range(clients)
    ]


# --- The clients (in the worker processes) ----------------------------------------------------------


@dataclass
class Started:
    """Counts first starts, so a worker can say once that every one of its calls is in flight."""

    expected: int
    count: int = 0
    all: anyio.Event = field(default_factory=anyio.Event)

    def start(self, call: Call) -> None:
        if not call.started:
            call.started = True
            self.count += 1
            if self.count >= self.expected:
                self.all.set()


async def run_client(url: str, calls: list[Call], started: Started, wait_seconds: float) -> None:
    """One MCP client carrying its calls until every one has its answer.

    A call cut by its instance's death is made again on the same client: the balancer no longer
    routes to the dead instance. Should the client itself fail, a new one takes the calls left."""
    pending = list(calls)
    while pending:
        with suppress(Exception):
            async with Client(url) as client, anyio.create_task_group() as group:
                for call in pending:
                    group.start_soon(wait_one, client, call, started, wait_seconds)
        pending = [call for call in pending if call.answered_at is None]
        if pending:
            await anyio.sleep(RETRY_PAUSE_SECONDS)


async def wait_one(client: Client, call: Call, started: Started, wait_seconds: float) -> None:
    started.start(call)
    arguments = {"task_id": call.task_id, "timeout_seconds": wait_seconds, "download": False}
    while call.answered_at is None:
        try:
            result = await client.call_tool("wait_for_video", arguments)
        except Exception:  # the instance died under this call: call again through the balancer
            call.broken += 1
            await anyio.sleep(RETRY_PAUSE_SECONDS)
            continue
        if result.is_error:  # counted and shown; a model would call again too
            call.errors += 1
            call.first_error = (
                call.first_error
                or " ".join(block.text for block in result.content if isinstance(block, TextContent))[:300]
            )
            await anyio.sleep(RETRY_PAUSE_SECONDS)
            continue
        content: dict[str, Any] = result.structured_content or {}
        if content.get("done"):
            call.status, call.answered_at = str(content["status"]), time.monotonic()


async def run_worker() -> None:
    """Start every call, say so once all are in flight, report every call when all are answered
    (or when the phase's time is up: a call never answered is reported as such, never waited for)."""
    setup = await next_message()
    shares = [[Call(task_id) for task_id in task_ids] for task_ids in setup["calls"]]
    started = Started(expected=sum(len(share) for share in shares))
    with anyio.move_on_after(PHASE_LIMIT_SECONDS):
        async with anyio.create_task_group() as group:
            for share in shares:
                group.start_soon(run_client, setup["url"], share, started, setup["wait_seconds"])
            await started.all.wait()
            emit({"in_flight": started.count})
    emit({"calls": [asdict(call) for share in shares for call in share]})


# --- Orchestration (the benchmark process) -----------------------------------------------------------


def last_answers(phase: Phase) -> dict[str, float]:
    """When each task's last waiter had its answer."""
    last: dict[str, float] = {}
    for call in phase.calls:
        if call.answered_at is not None:
            last[call.task_id] = max(last.get(call.task_id, 0.0), call.answered_at)
    return last


def finish_to_last_answer(simulator: Simulator, phase: Phase) -> list[float]:
    """Per task: from its finish upstream to its last waiter's answer (detection plus fan-out)."""
    last = last_answers(phase)
    return [
        last[task_id] - simulator.tasks[task_id].finished_at(simulator.time_scale)
        for task_id in phase.task_ids
        if task_id in last
    ]


def seen_to_last_answer(simulator: Simulator, log: StatusLog, phase: Phase) -> list[float]:
    """Per task: from the status request that saw it finished to its last waiter's answer (fan-out)."""
    last = last_answers(phase)
    spans = []
    for task_id in phase.task_ids:
        finished_at = simulator.tasks[task_id].finished_at(simulator.time_scale)
        seen = [at for at in log.times[task_id] if at >= finished_at]
        if seen and task_id in last:
            spans.append(last[task_id] - seen[0])
    return spans


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


def describe_counts(values: list[int]) -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):g}, min {min(values)}, max {max(values)}"


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
                bench = Bench(args, cluster, simulator, log, url, Path(workdir))
                await phases(bench)


@dataclass(frozen=True)
class Bench:
    """What every phase runs on."""

    args: argparse.Namespace
    cluster: Cluster
    simulator: Simulator
    log: StatusLog
    url: str  # the database
    workdir: Path


async def lease_for_every_task(bench: Bench) -> dict[str, str]:
    """Wait until every task has its poller somewhere in the cluster; the lease owners then."""
    # The database has no event to wait on: poll it.
    while len(owners := await lease_owners(bench.url)) < bench.args.tasks:  # noqa: ASYNC110
        await anyio.sleep(LEASE_PROBE_SECONDS)
    return owners


async def drive(
    worker: Worker, url: str, calls: list[list[str]], in_flight: anyio.Event, phase: Phase
) -> None:
    """Hand a worker its calls, note when all are in flight, collect how each one ended."""
    await worker.send({"url": url, "wait_seconds": WAIT_SECONDS, "calls": calls})
    with anyio.fail_after(WORKER_START_TIMEOUT_SECONDS):
        await worker.receive("in_flight")
    in_flight.set()
    report = await worker.receive("calls")
    phase.calls.extend(Call(**call) for call in report["calls"])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (0 once it is gone)."""
    try:
        return read_process(pid).cpu_seconds
    except OSError:
        return 0.0


def cpu_by_process(cluster: Cluster, workers: list[Worker]) -> dict[str, float]:
    processes = {instance.name: instance.process.pid for instance in cluster.instances}
    processes["haproxy"] = cluster.balancer.pid
    processes.update({f"clients-{n}": worker.process.pid for n, worker in enumerate(workers)})
    return {name: cpu_seconds(pid) for name, pid in processes.items()}


async def run_phase(
    bench: Bench,
    *,
    waiters: int,
    clients: int,
    during: Callable[[dict[str, str]], Coroutine[Any, Any, None]] | None = None,
) -> Phase:
    """Fresh tasks, their waits in flight, `--task-duration` seconds of polling, then they end.

    `during` starts once every call is in flight and every task has its poller (given the lease
    owners), beside the polling, and is cancelled once every call has its answer.
    """
    phase = Phase(await submit(bench.cluster, bench.simulator, bench.args.tasks))
    calls_per_client = deal(phase.task_ids, waiters, clients)
    processes = max(1, min(bench.args.client_processes, clients))
    async with (
        worker_processes(MODULE, processes, clients, bench.workdir) as workers,
        anyio.create_task_group() as beside,
    ):
        async with anyio.create_task_group() as drivers:
            in_flight = [anyio.Event() for _ in workers]
            for worker, event in zip(workers, in_flight, strict=True):
                calls = [calls_per_client[client] for client in worker.clients]
                drivers.start_soon(drive, worker, bench.cluster.url, calls, event, phase)
            for event in in_flight:
                await event.wait()
            owners = await lease_for_every_task(bench)
            await anyio.sleep(IN_FLIGHT_SETTLE_SECONDS)
            if during is not None:
                beside.start_soon(during, owners)
            await anyio.sleep(bench.args.task_duration)
            phase.cpu_at_finish = cpu_by_process(bench.cluster, workers)
            for task_id in phase.task_ids:
                bench.simulator.finish_now(task_id)
        beside.cancel_scope.cancel()
        phase.cpu_at_end = cpu_by_process(bench.cluster, workers)
    return phase


def print_cpu(phase: Phase) -> None:
    """Where the fan-out's time went: on a 2-core machine, answering thousands of calls is CPU-bound."""
    spent = {
        name: end - phase.cpu_at_finish.get(name, 0.0)
        for name, end in phase.cpu_at_end.items()
        if end > 0.0  # a killed instance has no figures
    }
    servers = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in spent.items() if name.startswith("i"))
    clients = sum(cpu for name, cpu in spent.items() if name.startswith("clients"))
    print(
        f"  CPU from the finish to the last answer: instances {servers}; "
        f"HAProxy {spent.get('haproxy', 0.0):.1f} s; client processes {clients:.1f} s"
    )


def print_errors(phase: Phase) -> None:
    errors = [call for call in phase.calls if call.errors]
    if errors:
        kinds = Counter(call.first_error for call in errors)
        print(f"  tool errors (the call was made again): {sum(call.errors for call in errors)}, first ones:")
        for text, count in kinds.most_common(3):
            print(f"    {count} x {text}")


def print_latency(bench: Bench, phase: Phase) -> None:
    finish = describe(finish_to_last_answer(bench.simulator, phase))
    seen = describe(seen_to_last_answer(bench.simulator, bench.log, phase))
    print(f"  upstream finish -> last waiter's answer: {finish}")
    print(f"  the poll that saw the finish -> last waiter's answer: {seen}")


async def phases(bench: Bench) -> None:
    args, simulator, log, cluster = bench.args, bench.simulator, bench.log, bench.cluster
    shape = (
        f"{args.waiters} waits on {args.tasks} tasks from {args.clients} clients "
        f"in {args.client_processes} processes"
    )

    # 1. shared
    shared = await run_phase(bench, waiters=args.waiters, clients=args.clients)
    finished = sum(call.status == "finished" for call in shared.calls)
    shared_requests = log.count(shared.task_ids)
    print(f"\n[shared] {shape}, through the balancer")
    print(f"  completed: {finished}/{len(shared.calls)} finished")
    print(f"  upstream status requests: {shared_requests} ({shared_requests / args.tasks:.1f} per task)")
    print_errors(shared)
    print_latency(bench, shared)
    print_cpu(shared)
    for instance in cluster.instances:
        rss = read_process(instance.process.pid).hwm_kib / 1024
        print(f"  {instance.name} (pid {instance.process.pid}) peak RSS: {rss:.0f} MB")

    # 2. baseline: single pollers
    baseline = await run_phase(bench, waiters=args.tasks, clients=args.tasks)
    baseline_requests = log.count(baseline.task_ids)
    ratio = shared_requests / baseline_requests if baseline_requests else float("nan")
    print(f"\n[baseline] {args.tasks} tasks, one waiter each: {baseline_requests} status requests")
    print(f"  shared / single pollers: {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    print(f"  upstream finish -> the waiter's answer: {describe(finish_to_last_answer(simulator, baseline))}")

    # 3. kill
    victim = Victim()

    async def kill_the_busiest(owners: dict[str, str]) -> None:
        await anyio.sleep(args.kill_after)
        await victim.kill_busiest(cluster, owners, bench.url)
        print(
            f"\n[kill] {shape}; SIGKILL to {victim.name}, "
            f"which polled {len(victim.task_ids)} of {args.tasks} tasks"
        )
        await victim.watch_claims(bench.url)

    killed = await run_phase(bench, waiters=args.waiters, clients=args.clients, during=kill_the_busiest)
    gaps = victim.takeover_gaps(log)
    lost = {call.task_id for call in killed.calls if call.status != "finished"}
    print(
        f"  completed: {sum(call.status == 'finished' for call in killed.calls)}/{len(killed.calls)} finished"
    )
    print(f"  calls broken by the kill and made again: {sum(call.broken for call in killed.calls)}")
    print(f"  takeover gap (last poll before the kill -> first after), per task: {describe(gaps)}")
    victim.print_breakdown(log)
    victim.print_others(log, killed.task_ids)
    print(f"  (target < {TARGET_TAKEOVER_SECONDS:g} s; {len(gaps)} of {len(victim.task_ids)} tasks measured)")
    print(f"  lost tasks: {len(lost)} (target 0)")
    print(f"  upstream status requests: {log.count(killed.task_ids)}")
    print_errors(killed)
    print_latency(bench, killed)
    print_cpu(killed)
    print(f"\nload average at the end: {load_average()}")


@dataclass
class Victim:
    """The instance killed mid-run (the one holding the most polling leases), and its takeover.

    The takeover gap splits in three: the dead instance's leases run out (they were renewed
    until the kill), a survivor with a waiter claims the lease, and it asks APIMP.
    """

    name: str = ""
    owner: str = ""
    task_ids: list[str] = field(default_factory=list)
    killed_at: float = 0.0
    lease_left_seconds: dict[str, float] = field(default_factory=dict)  # at the kill
    claimed_at: dict[str, float] = field(default_factory=dict)  # by a survivor

    async def kill_busiest(self, cluster: Cluster, owners: dict[str, str], url: str) -> None:
        self.owner, _ = Counter(owners.values()).most_common(1)[0]
        instance = cluster.instance_with_pid(int(self.owner.split(":")[1]))
        self.name = instance.name
        self.task_ids = [task_id for task_id, holder in owners.items() if holder == self.owner]
        instance.kill()
        self.killed_at = time.monotonic()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cursor = await conn.execute(
                "SELECT task_id, extract(epoch FROM lease_until - now()) FROM task_polls WHERE owner = %s",
                (self.owner,),
            )
            self.lease_left_seconds = {task_id: float(left) for task_id, left in await cursor.fetchall()}

    async def watch_claims(self, url: str) -> None:
        """Note when each of the dead instance's tasks gets a new owner (read every probe interval)."""
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await self._watch_claims(conn)

    async def _watch_claims(self, conn: psycopg.AsyncConnection[Any]) -> None:
        with anyio.move_on_after(TAKEOVER_WATCH_SECONDS):
            while len(self.claimed_at) < len(self.task_ids):
                cursor = await conn.execute("SELECT task_id, owner FROM task_polls")
                now = time.monotonic()
                for task_id, owner in await cursor.fetchall():
                    if task_id in self.task_ids and owner != self.owner:
                        self.claimed_at.setdefault(task_id, now)
                await anyio.sleep(LEASE_PROBE_SECONDS)

    def takeover_gaps(self, log: StatusLog) -> list[float]:
        """Per task it polled: from its last status request before the kill to the first one after."""
        return [first - last for last, first in self._polls_around_kill(log).values()]

    def print_breakdown(self, log: StatusLog) -> None:
        around = self._polls_around_kill(log)
        lapsed = {task: self.killed_at + max(0.0, left) for task, left in self.lease_left_seconds.items()}
        parts = {
            "last poll -> kill": [self.killed_at - last for last, _ in around.values()],
            "kill -> lease lapses": [at - self.killed_at for at in lapsed.values()],
            "lapse -> a survivor claims": [
                self.claimed_at[t] - lapsed[t] for t in self.claimed_at if t in lapsed
            ],
            "claim -> its first poll": [
                around[t][1] - self.claimed_at[t] for t in self.claimed_at if t in around
            ],
        }
        for name, values in parts.items():
            print(f"    {name}: {describe(values)}")
        after = {task_id: sum(at > self.killed_at for at in log.times[task_id]) for task_id in log.times}
        victims = [after[task_id] for task_id in self.task_ids]
        print(f"    status requests per task after the kill, its tasks: {describe_counts(victims)}")

    def print_others(self, log: StatusLog, task_ids: list[str]) -> None:
        others = [
            sum(at > self.killed_at for at in log.times[task_id])
            for task_id in task_ids
            if task_id not in self.task_ids
        ]
        print(f"    status requests per task after the kill, the others: {describe_counts(others)}")

    def _polls_around_kill(self, log: StatusLog) -> dict[str, tuple[float, float]]:
        around = {}
        for task_id in self.task_ids:
            times = log.times[task_id]
            before = [at for at in times if at <= self.killed_at]
            after = [at for at in times if at > self.killed_at]
            if before and after:
                around[task_id] = (before[-1], after[0])
        return around


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--waiters", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=300, help="MCP clients carrying the waits")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=DEFAULT_CLIENT_PROCESSES,
        help="processes the clients run in (one process of clients saturates a core)",
    )
    parser.add_argument("--task-duration", type=float, default=20.0)
    parser.add_argument(
        "--kill-after", type=float, default=2.0, help="seconds after every task has its poller"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a client process
    args = parser.parse_args()
    if args.worker:
        anyio.run(run_worker)
        return
    print_header("benchmarks.cluster", " ".join(["python -m benchmarks.cluster", *sys.argv[1:]]))
    anyio.run(run, args)


if __name__ == "__main__":
    main()
