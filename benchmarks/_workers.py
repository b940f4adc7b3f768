"""Client worker processes for the benchmarks: SDK clients spread over processes, spoken to in JSON lines.

Why: one Python process of SDK clients saturates a core long before a server does, and then the
benchmark measures its own clients. A worker is `python -m <benchmark module> --worker`; the
orchestrator writes JSON lines to its stdin and reads JSON lines from its stdout (nothing else may
be printed there); its stderr goes to a log shown when it dies. Times a worker reports come from
time.monotonic, which on Linux is one clock for every process on the machine.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

MAX_LINE_BYTES: Final = 64 * 1024 * 1024  # a worker's report: ~200 bytes per call
STOP_TIMEOUT_SECONDS: Final = 10.0
LOG_TAIL_LINES: Final = 20
REPOSITORY: Final = Path(__file__).parent.parent


# --- In the worker --------------------------------------------------------------------------------


def emit(message: dict[str, Any]) -> None:
    """A worker's stdout carries only these JSON lines to the orchestrator."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def next_message() -> dict[str, Any]:
    """The orchestrator's next line, read without blocking the worker's event loop."""
    message: dict[str, Any] = json.loads(await anyio.to_thread.run_sync(sys.stdin.readline))
    return message


# --- In the orchestrator --------------------------------------------------------------------------


def log_tail(log_path: Path) -> str:
    """The end of a child's stderr: where its own account of a failure is."""
    try:
        lines = log_path.read_text().splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(lines[-LOG_TAIL_LINES:])


async def stop(process: Process) -> None:
    """SIGINT (Ctrl-C: a server shuts down gracefully, so a profiled one writes its stats), then
    SIGKILL if it lingers: no child may outlive the benchmark."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            with anyio.move_on_after(STOP_TIMEOUT_SECONDS):
                await process.wait()
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()


@dataclass
class Worker:
    """A process of clients, spoken to in JSON lines."""

    process: Process
    clients: list[int]  # which of the phase's clients it runs
    log_path: Path
    lines: BufferedByteReceiveStream

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None  # opened with a pipe
        await self.process.stdin.send((json.dumps(message) + "\n").encode())

    async def receive(self, key: str) -> dict[str, Any]:
        try:
            line = await self.lines.receive_until(b"\n", MAX_LINE_BYTES)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            raise RuntimeError(f"a client process died:\n{log_tail(self.log_path)}") from None
        message: dict[str, Any] = json.loads(line)
        if key not in message:
            raise RuntimeError(f"a client process said {message}, expected {key!r}")
        return message


@asynccontextmanager
async def worker_processes(
    module: str, count: int, clients: int, workdir: Path
) -> AsyncIterator[list[Worker]]:
    """`count` processes of `python -m <module> --worker` sharing `clients` round-robin, stopped on exit."""
    command = [sys.executable, "-m", module, "--worker"]
    async with AsyncExitStack() as stack:
        workers = []
        for index in range(count):
            log_path = workdir / f"clients-{index}.log"
            log = stack.enter_context(log_path.open("w"))
            process = await anyio.open_process(command, stderr=log, cwd=REPOSITORY)
            stack.push_async_callback(stop, process)
            assert process.stdout is not None  # opened with a pipe
            lines = BufferedByteReceiveStream(process.stdout)
            workers.append(Worker(process, list(range(index, clients, count)), log_path, lines))
        yield workers
