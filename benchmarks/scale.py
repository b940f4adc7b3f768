"""Benchmark: 1,000 concurrent wait_for_video calls from many clients into one server process.

Why it exists: the server promises that waiting is cheap however many agents wait. `PollerHub`
runs one poller per task, so 1,000 waiters on 10 tasks should cost APIMP the status requests of
10 waiters, and the waiters themselves should cost the server little memory and CPU. This proves
it end to end, the way a deployment sees it: the installed console script is spawned as a real
process serving streamable HTTP, real SDK clients connect over loopback, and the APIMP simulator
runs inside this benchmark process so every upstream request can be counted and timed.

A phase: the clients connect (spread over `--client-processes` worker processes, so the clients'
own CPU does not throttle the benchmark process that hosts the simulator), the tasks are submitted
through the server, then every `wait_for_video` is released at once (waiters spread evenly over
the tasks, `download: false`). The server's memory (VmRSS sampled over time, and VmHWM) and CPU
time are read from /proc. A baseline phase then waits on fresh tasks with one waiter each.

    .venv/bin/python -m benchmarks.scale [--tasks 10] [--clients 100] [--waiters-per-task 100]
        [--task-duration 25] [--client-processes 2] [--rounds 1] [--mode auto|legacy]
        [--no-baseline] [--profile-server FILE]

Figures are printed, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import pstats
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import httpx2
from anyio.abc import Process
from mcp import Client
from mcp.types import CallToolResult, TextContent
from starlette.types import ASGIApp, Receive, Scope, Send

from apimp_video_mcp import defaults
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator
from benchmarks._machine import ProcessSample, load_average, machine_description, read_process, source_state
from benchmarks._workers import (
    LOG_TAIL_LINES,
    Worker,
    emit,
    log_tail,
    next_message,
    stop,
    worker_processes,
)

Mode = Literal["auto", "legacy"]

MODEL: Final = "veo-3.0-fast-generate-001"
PROMPT: Final = "a lighthouse at dusk, waves breaking, slow dolly in"
STATUS_PATH: Final = "/api/generate/status/"

DEFAULT_TASKS: Final = 10
DEFAULT_CLIENTS: Final = 100
DEFAULT_WAITERS_PER_TASK: Final = 100
# Long enough that every call is in flight well before its task ends, short enough for a ~2 min run.
DEFAULT_TASK_DURATION_SECONDS: Final = 25.0
# One process of SDK clients saturates a core before the server does; two keep the server the subject.
DEFAULT_CLIENT_PROCESSES: Final = 2

# The server's default wait; every call passes its own timeout, this only keeps the default out of the way.
SERVER_WAIT_TIMEOUT_SECONDS: Final = 600.0
# A call's timeout_seconds is the task duration plus this: a timeout must never end a wait here.
WAIT_MARGIN_SECONDS: Final = 120.0
# The client's read timeout per call is the wait timeout plus this, so the server always answers first.
READ_TIMEOUT_MARGIN_SECONDS: Final = 30.0
# As in `apimp-video-mcp --simulate`: a demo task takes seconds, so polls stay within a quarter of it.
POLL_CEILING_FRACTION: Final = 0.25

SERVER_START_TIMEOUT_SECONDS: Final = 30.0
WORKER_START_TIMEOUT_SECONDS: Final = 120.0  # importing the SDK and connecting on a loaded machine
PROBE_INTERVAL_SECONDS: Final = 0.05
SAMPLE_INTERVAL_SECONDS: Final = 0.2
# After the last answer, let the server release what the calls held before reading "RSS after".
SETTLE_SECONDS: Final = 2.0

TARGET_PEAK_RSS_MB: Final = 200.0
KIB_PER_MB: Final = 1024.0
MS_PER_SECOND: Final = 1000.0
PROFILE_TOP_FUNCTIONS: Final = 30
TRACEBACK_LINES: Final = 40


# --- /proc -----------------------------------------------------------------------------------------


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic, one clock for every process on Linux
    server: ProcessSample
    clients_cpu_seconds: float  # the worker processes
    simulator_cpu_seconds: float  # this process: the simulator and the bookkeeping


@dataclass
class Monitor:
    """Samples the server and the clients over time: VmHWM alone cannot tell one phase from another,
    and CPU time per window tells which process was the bottleneck when answers were slow."""

    server_pid: int
    worker_pids: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    _worker_cpu: dict[int, float] = field(default_factory=dict)  # last known: workers exit at the end

    async def run(self) -> None:
        while True:
            with suppress(OSError, KeyError, ValueError):
                server = read_process(self.server_pid)
                for pid in self.worker_pids:
                    with suppress(OSError, KeyError, ValueError):
                        self._worker_cpu[pid] = read_process(pid).cpu_seconds
                clients = sum(self._worker_cpu.values())
                self.samples.append(Sample(time.monotonic(), server, clients, own_cpu_seconds()))
            await anyio.sleep(SAMPLE_INTERVAL_SECONDS)

    @property
    def peak_rss_kib(self) -> int:
        return max((sample.server.rss_kib for sample in self.samples), default=0)

    def cpu_between(self, start: float, end: float) -> CpuWindow:
        """CPU seconds of each side between the first and last samples inside [start, end]."""
        inside = [sample for sample in self.samples if start <= sample.at <= end]
        if len(inside) < 2:
            return CpuWindow()
        first, last = inside[0], inside[-1]
        return CpuWindow(
            last.at - first.at,
            last.server.cpu_seconds - first.server.cpu_seconds,
            last.clients_cpu_seconds - first.clients_cpu_seconds,
            last.simulator_cpu_seconds - first.simulator_cpu_seconds,
        )


@dataclass(frozen=True)
class CpuWindow:
    seconds: float = 0.0
    server: float = 0.0
    clients: float = 0.0
    simulator: float = 0.0

    def describe(self) -> str:
        def share(cpu: float) -> str:
            return f"{cpu:.2f} s ({cpu / self.seconds:.0%} of a core)"

        return (
            f"server {share(self.server)}, clients {share(self.clients)}, "
            f"simulator process {share(self.simulator)}"
        )


# --- The simulator's view --------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusPoll:
    """One status request as the simulator served it."""

    task_id: str
    started_at: float
    ended_at: float


class StatusTimer:
    """ASGI middleware on the simulator: when each poll came, so "the server noticed the finish
    late" can be told apart from "the server was slow to tell its waiters"."""

    def __init__(self, app: ASGIApp, log: list[StatusPoll]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(STATUS_PATH):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        await self.app(scope, receive, send)
        self.log.append(StatusPoll(path.removeprefix(STATUS_PATH), started, time.monotonic()))


def poll_starts(polls: Sequence[StatusPoll], task_ids: Sequence[str]) -> dict[str, list[float]]:
    """When each of the tasks was polled, in order."""
    starts: dict[str, list[float]] = {task_id: [] for task_id in task_ids}
    for poll in polls:
        if poll.task_id in starts:
            starts[poll.task_id].append(poll.started_at)
    return starts


def min_gap_seconds(starts: dict[str, list[float]]) -> float:
    """The shortest time between two polls of one task: two pollers on a task would show gaps far
    below the poll floor; one poller never goes below floor x (1 - jitter)."""
    gaps = [later - earlier for times in starts.values() for earlier, later in itertools.pairwise(times)]
    return min(gaps, default=math.inf)


def first_poll_after(polls: Sequence[StatusPoll], finished_at: dict[str, float]) -> dict[str, float]:
    """Per task, when the answer of the first poll made after it finished left the simulator."""
    noticed: dict[str, float] = {}
    for poll in polls:
        finished = finished_at.get(poll.task_id)
        if finished is not None and poll.started_at >= finished and poll.task_id not in noticed:
            noticed[poll.task_id] = poll.ended_at
    return noticed


# --- The server process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def console_script() -> str:
    """The installed `apimp-video-mcp` beside this interpreter: what a host would spawn."""
    script = Path(sys.executable).parent / "apimp-video-mcp"
    if not script.exists():
        raise SystemExit(f"{script} is missing: install the project (pip install -e .) first")
    return str(script)


def server_environment(base_url: str, workdir: Path, task_duration_seconds: float) -> dict[str, str]:
    """What a host's 'env' block would hold; nothing else is inherited."""
    ceiling = task_duration_seconds * POLL_CEILING_FRACTION
    return {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "APIMP_API_KEY": SIMULATOR_API_KEY,
        "APIMP_BASE_URL": base_url,
        "APIMP_DOWNLOAD_DIR": str(workdir / "videos"),
        "APIMP_JOURNAL": str(workdir / "journal.sqlite3"),
        "APIMP_WAIT_TIMEOUT": f"{SERVER_WAIT_TIMEOUT_SECONDS:g}",
        "APIMP_POLL_MAX_INTERVAL": f"{ceiling:g}",
        "APIMP_POLL_MIN_INTERVAL": f"{min(defaults.POLL_MIN_INTERVAL_SECONDS, ceiling):g}",
    }


@dataclass
class ServerProcess:
    url: str
    process: Process
    command: list[str]
    environment: dict[str, str]
    log_path: Path


async def wait_until_answering(server: ServerProcess) -> None:
    """Any HTTP answer on /mcp means uvicorn is up; a refused connection means not yet."""
    with anyio.fail_after(SERVER_START_TIMEOUT_SECONDS):
        async with httpx2.AsyncClient() as probe:
            while True:
                if server.process.returncode is not None:
                    raise RuntimeError(f"the server exited during start-up:\n{log_tail(server.log_path)}")
                try:
                    await probe.get(server.url)
                except httpx2.TransportError:
                    await anyio.sleep(PROBE_INTERVAL_SECONDS)
                else:
                    return


@asynccontextmanager
async def server_process(
    base_url: str, workdir: Path, task_duration_seconds: float, profile_path: Path | None
) -> AsyncIterator[ServerProcess]:
    """The console script on a free loopback port, stopped on exit whatever happened."""
    port = free_port()
    command = [console_script(), "--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)]
    if profile_path is not None:  # diagnosis only: cProfile slows the server down
        command = [sys.executable, "-m", "cProfile", "-o", str(profile_path), *command]
    environment = server_environment(base_url, workdir, task_duration_seconds)
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        process = await anyio.open_process(command, env=environment, stdout=subprocess.DEVNULL, stderr=log)
        try:
            server = ServerProcess(f"http://127.0.0.1:{port}/mcp", process, command, environment, log_path)
            await wait_until_answering(server)
            yield server
        finally:
            await stop(process)


# --- The clients (in the worker processes) ----------------------------------------------------------


@dataclass
class CallOutcome:
    """One wait_for_video call as its client saw it (times from time.monotonic)."""

    task_id: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    status: str | None = None
    timed_out: bool | None = None
    progress_notifications: int = 0
    error: str | None = None


@dataclass
class Failures:
    """Client-level failures (a client that could not connect, or whose session broke), by kind."""

    counts: Counter[str] = field(default_factory=Counter)
    first_tracebacks: dict[str, str] = field(default_factory=dict)

    def add(self, exc: BaseException) -> str:
        kind = describe_error(exc)
        self.counts[kind] += 1
        self.first_tracebacks.setdefault(kind, "".join(traceback.format_exception(exc)))
        return kind


def describe_error(exc: BaseException) -> str:
    """One short line per distinct failure, so 1,000 identical errors count as one kind."""
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(sorted({describe_error(inner) for inner in exc.exceptions}))
    return f"{type(exc).__name__}: {str(exc)[:160]}"


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def record_result(outcome: CallOutcome, result: CallToolResult) -> None:
    structured: Any = result.structured_content
    if result.is_error or not isinstance(structured, dict):
        outcome.error = f"tool error: {text_of(result)[:160]}"
        return
    outcome.status = str(structured.get("status"))
    outcome.timed_out = bool(structured.get("timed_out"))


@dataclass(frozen=True)
class ClientConfig:
    url: str
    mode: Mode
    wait_timeout_seconds: float


@dataclass
class Gate:
    """Holds every call until all clients are connected and the tasks are submitted.

    So the waits really are concurrent, and they start with their tasks in every phase: a poller
    that started late would poll less, and the request counts of two phases would not compare.
    """

    expected: int
    connected: int = 0
    all_connected: anyio.Event = field(default_factory=anyio.Event)
    go: anyio.Event = field(default_factory=anyio.Event)

    def arrive(self) -> None:
        self.connected += 1
        if self.connected >= self.expected:
            self.all_connected.set()

    def leave_early(self) -> None:
        """A client that failed to connect must not keep the others waiting."""
        self.expected -= 1
        if self.connected >= self.expected:
            self.all_connected.set()


async def wait_call(client: Client, outcome: CallOutcome, wait_timeout_seconds: float) -> None:
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        outcome.progress_notifications += 1

    arguments = {"task_id": outcome.task_id, "timeout_seconds": wait_timeout_seconds, "download": False}
    outcome.started_at = time.monotonic()
    try:
        result = await client.call_tool(
            "wait_for_video",
            arguments,
            read_timeout_seconds=wait_timeout_seconds + READ_TIMEOUT_MARGIN_SECONDS,
            progress_callback=on_progress,
        )
        record_result(outcome, result)
    except Exception as exc:  # counted, never fatal: one failed call must not hide the others
        outcome.error = describe_error(exc)
    finally:
        outcome.ended_at = time.monotonic()


async def run_client(
    config: ClientConfig, outcomes: Sequence[CallOutcome], gate: Gate, failures: Failures
) -> None:
    """One MCP client (its own HTTP connection pool and session) issuing its share of the waits."""
    arrived = False
    try:
        async with Client(config.url, mode=config.mode) as client:
            gate.arrive()
            arrived = True
            await gate.go.wait()
            async with anyio.create_task_group() as group:
                for outcome in outcomes:
                    group.start_soon(wait_call, client, outcome, config.wait_timeout_seconds)
    except Exception as exc:  # a client that cannot connect or whose session breaks: its calls are errors
        kind = failures.add(exc)
        for outcome in outcomes:
            if outcome.status is None and outcome.error is None:
                outcome.error = f"client failed: {kind}"
                outcome.ended_at = outcome.ended_at or time.monotonic()
    finally:
        if not arrived:
            gate.leave_early()


async def run_worker(config: ClientConfig, calls_per_client: Sequence[int]) -> None:
    """Connect the clients, say so, take the task of each call, wait, report every outcome."""
    shares = [[CallOutcome() for _ in range(count)] for count in calls_per_client]
    gate = Gate(expected=len(shares))
    failures = Failures()
    async with anyio.create_task_group() as group:
        for share in shares:
            group.start_soon(run_client, config, share, gate, failures)
        await gate.all_connected.wait()
        emit({"connected": gate.connected})
        assignment: list[list[str]] = (await next_message())["task_ids"]
        for share, task_ids in zip(shares, assignment, strict=True):
            for outcome, task_id in zip(share, task_ids, strict=True):
                outcome.task_id = task_id
        gate.go.set()
    emit(
        {
            "outcomes": [asdict(outcome) for share in shares for outcome in share],
            "failures": dict(failures.counts),
            "tracebacks": failures.first_tracebacks,
        }
    )


def worker_main() -> None:
    """`python -m benchmarks.scale --worker`: the first stdin line is the configuration."""
    setup = json.loads(sys.stdin.readline())
    config = ClientConfig(setup["url"], setup["mode"], setup["wait_timeout_seconds"])
    anyio.run(run_worker, config, setup["calls_per_client"])


# --- Orchestration (the benchmark process) -----------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    url: str
    pid: int
    simulator: Simulator
    polls: list[StatusPoll]
    workdir: Path
    args: argparse.Namespace

    @property
    def client_config(self) -> ClientConfig:
        return ClientConfig(self.url, self.args.mode, self.args.task_duration + WAIT_MARGIN_SECONDS)


@dataclass
class Phase:
    """One batch of concurrent waits and what it cost."""

    name: str
    clients: int
    client_processes: int
    task_ids: list[str] = field(default_factory=list)
    outcomes: list[CallOutcome] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    tracebacks: dict[str, str] = field(default_factory=dict)
    connect_seconds: float = 0.0
    started_at: float = 0.0
    server_before: ProcessSample | None = None
    server_after: ProcessSample | None = None
    server_settled: ProcessSample | None = None
    peak_rss_kib: int = 0
    whole: CpuWindow = field(default_factory=CpuWindow)
    fan_out: CpuWindow = field(default_factory=CpuWindow)
    status_requests: dict[str, int] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)
    noticed_at: dict[str, float] = field(default_factory=dict)
    first_poll_delays: list[float] = field(default_factory=list)  # submit -> first status request
    min_poll_gap_seconds: float = math.inf

    @property
    def last_answer_at(self) -> float:
        return max((outcome.ended_at for outcome in self.outcomes), default=self.started_at)

    @property
    def wall_seconds(self) -> float:
        return self.last_answer_at - self.started_at


async def submit_tasks(client: Client, count: int) -> list[str]:
    """Submit through the MCP server (so its journal knows the model), in sequence."""
    task_ids = []
    for _ in range(count):
        result = await client.call_tool("submit_video", {"model": MODEL, "input": {"prompt": PROMPT}})
        structured: Any = result.structured_content
        if result.is_error or not isinstance(structured, dict):
            raise RuntimeError(f"submit_video failed: {text_of(result)}")
        task_ids.append(str(structured["task_id"]))
    return task_ids


def split_calls(total: int, clients: int) -> list[int]:
    """As even a share of the calls as can be, per client."""
    return [len(range(index, total, clients)) for index in range(clients)]


def deal_tasks(calls_per_client: Sequence[int], task_ids: Sequence[str]) -> list[list[str]]:
    """Round-robin over the calls in client order: each task gets the same number of waiters, and
    a client with as many calls as there are tasks waits on every task."""
    numbers = itertools.count()
    return [[task_ids[next(numbers) % len(task_ids)] for _ in range(count)] for count in calls_per_client]


async def connect(workers: Sequence[Worker], config: ClientConfig, calls_per_client: Sequence[int]) -> None:
    with anyio.fail_after(WORKER_START_TIMEOUT_SECONDS):
        for worker in workers:
            setup = {**asdict(config), "calls_per_client": [calls_per_client[c] for c in worker.clients]}
            await worker.send(setup)
        for worker in workers:
            await worker.receive("connected")


async def release(workers: Sequence[Worker], assignment: Sequence[list[str]], phase: Phase) -> None:
    """Give every call its task, then collect what every worker saw."""
    for worker in workers:
        await worker.send({"task_ids": [assignment[c] for c in worker.clients]})
    for worker in workers:
        report = await worker.receive("outcomes")
        phase.outcomes.extend(CallOutcome(**outcome) for outcome in report["outcomes"])
        phase.failures.update(report["failures"])
        for kind, text in report["tracebacks"].items():
            phase.tracebacks.setdefault(kind, text)


async def run_phase(
    workload: Workload, name: str, *, tasks: int, waiters_per_task: int, clients: int
) -> Phase:
    """Connect the clients, submit fresh tasks, then wait on them with `waiters_per_task` calls each."""
    clients = min(clients, tasks * waiters_per_task)
    processes = max(1, min(workload.args.client_processes, clients))
    calls_per_client = split_calls(tasks * waiters_per_task, clients)
    phase = Phase(name, clients, processes)
    monitor = Monitor(workload.pid)
    connecting = time.monotonic()
    async with (
        Client(workload.url, mode=workload.args.mode) as submitter,
        worker_processes("benchmarks.scale", processes, clients, workload.workdir) as workers,
        anyio.create_task_group() as group,
    ):
        monitor.worker_pids = [worker.process.pid for worker in workers]
        group.start_soon(monitor.run)
        await connect(workers, workload.client_config, calls_per_client)
        phase.connect_seconds = time.monotonic() - connecting
        phase.task_ids = await submit_tasks(submitter, tasks)
        phase.server_before = read_process(workload.pid)
        phase.started_at = time.monotonic()
        await release(workers, deal_tasks(calls_per_client, phase.task_ids), phase)
        phase.server_after = read_process(workload.pid)
        await anyio.sleep(SETTLE_SECONDS)
        phase.server_settled = read_process(workload.pid)
        group.cancel_scope.cancel()
    phase.peak_rss_kib = monitor.peak_rss_kib
    record_upstream(phase, workload)
    phase.whole = monitor.cpu_between(phase.started_at, phase.last_answer_at)
    if phase.finished_at:
        phase.fan_out = monitor.cpu_between(min(phase.finished_at.values()), phase.last_answer_at)
    return phase


def record_upstream(phase: Phase, workload: Workload) -> None:
    """What the simulator saw of this phase's tasks: requests, finish times, the polls that saw them."""
    simulator = workload.simulator
    phase.status_requests = {
        task_id: len(simulator.requests_to(STATUS_PATH + task_id)) for task_id in phase.task_ids
    }
    scale = simulator.time_scale
    phase.finished_at = {task_id: simulator.tasks[task_id].finished_at(scale) for task_id in phase.task_ids}
    phase.noticed_at = first_poll_after(workload.polls, phase.finished_at)
    starts = poll_starts(workload.polls, phase.task_ids)
    phase.first_poll_delays = [
        times[0] - simulator.tasks[task_id].created_at for task_id, times in starts.items() if times
    ]
    phase.min_poll_gap_seconds = min_gap_seconds(starts)


# --- Report --------------------------------------------------------------------------------------------


def mb(kib: int) -> float:
    return kib / KIB_PER_MB


def quantile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank quantile; plenty for a few hundred samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def spread(values: Sequence[float]) -> str:
    median, p90 = statistics.median(values), quantile(values, 0.9)
    return f"median {median:.2f} s, p90 {p90:.2f} s, max {max(values):.2f} s"


def max_in_flight(outcomes: Sequence[CallOutcome]) -> int:
    """The most calls open at one moment, from their start and end times."""
    events = sorted(
        [(outcome.started_at, 1) for outcome in outcomes if outcome.started_at]
        + [(outcome.ended_at, -1) for outcome in outcomes if outcome.started_at]
    )
    return max(itertools.accumulate(step for _, step in events), default=0)


def report_outcomes(phase: Phase) -> None:
    outcomes = phase.outcomes
    finished = sum(1 for outcome in outcomes if outcome.status == "finished")
    errors = Counter(outcome.error for outcome in outcomes if outcome.error is not None)
    others = Counter(outcome.status for outcome in outcomes if outcome.status not in (None, "finished"))
    print(f"completed with status finished: {finished}/{len(outcomes)}   (target: all {len(outcomes)})")
    print(
        f"errors: {sum(errors.values())}" + "".join(f"\n  {n} x {text}" for text, n in errors.most_common())
    )
    if others:
        print(f"other final statuses: {dict(others)}")
    if phase.failures:
        print(f"client-level failures (clients): {dict(phase.failures)}")
        for kind, text in phase.tracebacks.items():
            lines = text.splitlines()
            print(f"first traceback of {kind!r} (last {TRACEBACK_LINES} of {len(lines)} lines):")
            print("\n".join(f"    {line}" for line in lines[-TRACEBACK_LINES:]))


def report_timing(phase: Phase) -> None:
    outcomes = phase.outcomes
    early = sum(1 for outcome in outcomes if outcome.started_at < phase.finished_at[outcome.task_id])
    accepted = [outcome.started_at - phase.started_at for outcome in outcomes if outcome.started_at]
    lags = [outcome.ended_at - phase.finished_at[outcome.task_id] for outcome in outcomes if outcome.status]
    notice = [phase.noticed_at[task] - phase.finished_at[task] for task in phase.noticed_at]
    print(
        f"wall time, tasks submitted -> last answer: {phase.wall_seconds:.1f} s (the clients connected "
        f"before, in {phase.connect_seconds:.1f} s; max calls in flight {max_in_flight(outcomes)})"
    )
    print(f"calls sent before their task finished: {early}/{len(outcomes)} (they really waited)")
    if accepted:
        print(f"call sent after release: {spread(accepted)}")
    if phase.first_poll_delays:
        print(
            f"first poll after submit: {spread(phase.first_poll_delays)} "
            "(a poller starts with its task's first waiter)"
        )
    if notice:
        print(f"server's poll saw the finish after: {spread(notice)} (the schedule alone: < the poll floor)")
    if lags:
        print(f"answer after the task finished: {spread(lags)}")
    if phase.fan_out.seconds > 0:
        window = phase.fan_out
        print(f"CPU from first finish to last answer ({window.seconds:.1f} s): {window.describe()}")


def report_costs(phase: Phase) -> None:
    before, after, settled = phase.server_before, phase.server_after, phase.server_settled
    assert before is not None  # the three are set by run_phase
    assert after is not None
    assert settled is not None
    progress = [outcome.progress_notifications for outcome in phase.outcomes]
    requests = sorted(phase.status_requests.values())
    print(
        f"progress notifications received: {sum(progress)} "
        f"(per call: min {min(progress)}, median {statistics.median(progress):g}, max {max(progress)})"
    )
    print(
        f"server RSS: {mb(before.rss_kib):.1f} MB before, peak sampled {mb(phase.peak_rss_kib):.1f} MB, "
        f"VmHWM {mb(after.hwm_kib):.1f} MB, {mb(after.rss_kib):.1f} MB at the last answer, "
        f"{mb(settled.rss_kib):.1f} MB {SETTLE_SECONDS:g} s later"
        f"   (target: peak <= {TARGET_PEAK_RSS_MB:g} MB)"
    )
    server_cpu = after.cpu_seconds - before.cpu_seconds
    print(
        f"server CPU: {server_cpu:.2f} s over the phase, "
        f"{server_cpu / max(len(phase.outcomes), 1) * MS_PER_SECOND:.1f} ms per call; "
        f"tasks submitted -> last answer: {phase.whole.describe()}"
    )
    print(
        f"upstream status requests: {sum(requests)} in all, per task {requests} "
        f"(shortest gap between two polls of one task {phase.min_poll_gap_seconds:.2f} s)"
    )


def report_phase(phase: Phase) -> None:
    per_task = len(phase.outcomes) // max(1, len(phase.task_ids))
    print(
        f"\n## {phase.name}: {len(phase.outcomes)} wait_for_video calls on {len(phase.task_ids)} tasks "
        f"({per_task} per task) from {phase.clients} clients in {phase.client_processes} processes"
    )
    report_outcomes(phase)
    report_timing(phase)
    report_costs(phase)


def report_comparison(shared: Phase, baseline: Phase) -> None:
    """The claim: waiters share their task's poller, so requests scale with tasks, not waiters.

    Not to be read as "must be equal": the schedule has jitter, and a poller starts with its
    task's first waiter, which comes later when the server is busy accepting 1,000 calls.
    """
    many, few = sum(shared.status_requests.values()), sum(baseline.status_requests.values())
    waiters_many, waiters_few = len(shared.outcomes), len(baseline.outcomes)
    print("\n## One shared poller per task")
    print(
        f"{waiters_many:,} waiters on {len(shared.task_ids)} tasks: {many} requests; "
        f"{waiters_few:,} waiters on {len(baseline.task_ids)} tasks: {few} requests"
    )
    print(
        f"ratio {many / max(few, 1):.2f} (target: <= ~1, the requests of {len(shared.task_ids)} pollers: "
        f"{waiters_many // max(waiters_few, 1)}x the waiters must not mean more requests)"
    )


def report_summary(phases: Sequence[Phase], final: ProcessSample) -> None:
    loaded = [phase for phase in phases if phase.name != "baseline"]
    finished = sum(sum(1 for o in phase.outcomes if o.status == "finished") for phase in loaded)
    calls = sum(len(phase.outcomes) for phase in loaded)
    peak = max([final.hwm_kib, *(phase.peak_rss_kib for phase in phases)])
    print("\n## Targets")
    print(f"all calls complete:  target {calls}/{calls}   measured {finished}/{calls}")
    print(f"peak server RSS:     target <= {TARGET_PEAK_RSS_MB:g} MB   measured {mb(peak):.1f} MB (VmHWM)")
    print(f"server CPU over its whole life (start-up included): {final.cpu_seconds:.2f} s")


# --- Main --------------------------------------------------------------------------------------------


async def run_phases(workload: Workload, server: ServerProcess) -> None:
    """The shared phase (`--rounds` times, fresh tasks each), then the one-waiter baseline."""
    args = workload.args
    ready = read_process(server.process.pid)
    print(f"server ready: RSS {mb(ready.rss_kib):.1f} MB, CPU {ready.cpu_seconds:.2f} s at start-up")
    phases: list[Phase] = []
    try:
        for round_number in range(1, args.rounds + 1):
            name = "shared" if args.rounds == 1 else f"shared, round {round_number}"
            phase = await run_phase(
                workload, name, tasks=args.tasks, waiters_per_task=args.waiters_per_task, clients=args.clients
            )
            report_phase(phase)
            phases.append(phase)
        if args.baseline:
            baseline = await run_phase(
                workload, "baseline", tasks=args.tasks, waiters_per_task=1, clients=args.tasks
            )
            report_phase(baseline)
            report_comparison(phases[0], baseline)
            phases.append(baseline)
        report_summary(phases, read_process(server.process.pid))
    finally:
        if any(outcome.error for phase in phases for outcome in phase.outcomes):
            print(f"\n## server stderr (last {LOG_TAIL_LINES} lines)\n{log_tail(server.log_path)}")


def print_profile(path: Path) -> None:
    """Where the server's CPU went (cProfile inflates every figure: compare them, do not quote them)."""
    if not path.exists():
        print(f"\nno profile at {path}: the server did not exit cleanly")
        return
    print(f"\n## Server profile ({path}), top {PROFILE_TOP_FUNCTIONS} functions by own time")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(PROFILE_TOP_FUNCTIONS)


async def run(args: argparse.Namespace) -> None:
    simulator = Simulator(task_duration_seconds=args.task_duration)
    polls: list[StatusPoll] = []
    simulator.app.add_middleware(StatusTimer, log=polls)
    profile = Path(args.profile_server).absolute() if args.profile_server else None
    with tempfile.TemporaryDirectory(prefix="apimp-scale-") as tmp:
        workdir = Path(tmp)
        async with (
            running_simulator(simulator) as base_url,
            server_process(base_url, workdir, args.task_duration, profile) as server,
        ):
            print(f"server:  {shlex.join(server.command)}")
            shown = {key: value for key, value in server.environment.items() if key.startswith("APIMP_")}
            print(f"env:     {' '.join(f'{key}={value}' for key, value in shown.items())}")
            await run_phases(
                Workload(server.url, server.process.pid, simulator, polls, workdir, args), server
            )
    if profile is not None:
        print_profile(profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks submitted per phase")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent MCP clients")
    parser.add_argument("--waiters-per-task", type=int, default=DEFAULT_WAITERS_PER_TASK)
    parser.add_argument(
        "--task-duration",
        type=float,
        default=DEFAULT_TASK_DURATION_SECONDS,
        help="simulated seconds per task",
    )
    parser.add_argument(
        "--client-processes", type=int, default=DEFAULT_CLIENT_PROCESSES, help="processes the clients run in"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the shared phase (memory growth)")
    parser.add_argument("--mode", choices=("auto", "legacy"), default="auto", help="the SDK client's mode")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the 1-waiter run")
    parser.add_argument(
        "--profile-server", metavar="FILE", help="run the server under cProfile, print its top"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a client process
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.worker:
        worker_main()
        return
    print("# Scale: concurrent wait_for_video calls over streamable HTTP into one server process")
    print(f"machine: {machine_description()}")
    print(f"source:  {source_state()}")
    print(f"load average before: {load_average()}")
    print(f"command: .venv/bin/python -m benchmarks.scale {shlex.join(sys.argv[1:])}".rstrip())
    print(
        f"workload: {args.tasks} tasks x {args.waiters_per_task} waiters from {args.clients} clients in "
        f"{args.client_processes} processes, task duration {args.task_duration:g} s, model {MODEL}, "
        f"client mode {args.mode}"
    )
    anyio.run(run, args)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
