"""Benchmark: spawn to first tools/list answer over stdio, for our server and for a bare MCPServer.

Why it exists: a desktop host spawns every configured server when it starts and waits for each
tool list before the user can work, so start-up time is paid on every launch. The floor is what
the SDK itself costs: a bare `MCPServer` with one trivial tool. The target is to stay within 10 %
of that floor, so whatever our package adds on top must be cheap or deferred.

Ours (`apimp-video-mcp`, the installed console script) and the bare server are spawned
alternately, with the same interpreter and the same minimal environment, and each spawn is timed
from just before the process is created to the moment the `tools/list` answer arrives:

- raw: this script writes the initialize request, then `notifications/initialized` and
  `tools/list`, as JSON-RPC lines to the child's stdin and reads its stdout. No client library is
  in the way, so this is the precise figure.
- sdk: the SDK's `Client(stdio_client(...), mode="legacy")`, the handshake desktop hosts speak,
  then `list_tools()`: what a Python host would see, client overhead included.

`--import-breakdown` then explains the difference: both servers are spawned under
`python -X importtime`, answered up to tools/list, and the modules only ours imports are listed
by their own import time and by which of our modules pulls them in; then fresh interpreters time
the phases (imports, building the server, lifespan + first tools/list) without that inflation.

    .venv/bin/python -m benchmarks.startup [--rounds 15] [--warmup 1] [--import-breakdown]
                                           [--breakdown-repeats 5]

Figures are printed, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TextIO

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from benchmarks._machine import load_average, machine_description, source_state

DEFAULT_ROUNDS: Final = 15
DEFAULT_WARMUP_ROUNDS: Final = 1
TARGET_RATIO: Final = 1.10
# A spawn that has not answered by then is hung, not slow: it is killed and the run stops.
SPAWN_TIMEOUT_SECONDS: Final = 60.0
IMPORTTIME_REPEATS: Final = 5
TOP_MODULES: Final = 20
TOP_PACKAGES: Final = 12
MS_PER_SECOND: Final = 1000.0
MS_PER_US: Final = 0.001
OUR_PACKAGE: Final = "apimp_video_mcp"

BARE_SERVER: Final = '''\
"""A bare MCP server with one trivial tool: the floor any server built on the SDK starts from."""

from mcp.server import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


mcp.run()
'''

INITIALIZE_ID: Final = 1
TOOLS_LIST_ID: Final = 2


# --- What is spawned ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One server to spawn: its command (interpreter flags go between python and the script)."""

    name: str
    script: str  # a Python file: the console script, or the bare server
    env: dict[str, str]

    def command(self, *python_flags: str) -> list[str]:
        return [sys.executable, *python_flags, self.script]

    @property
    def spawned_as(self) -> list[str]:
        """What a host's config names: the console script itself for ours, `python file` for bare."""
        return [self.script] if self.name == "ours" else self.command()


def console_script() -> str:
    """The installed `apimp-video-mcp` beside this interpreter: what a host would spawn."""
    script = Path(sys.executable).parent / "apimp-video-mcp"
    if not script.exists():
        raise SystemExit(f"{script} is missing: install the project (pip install -e .) first")
    return str(script)


def subjects(workdir: Path) -> tuple[Subject, Subject]:
    """Ours and bare, with the same minimal environment (the SDK's inherited variables + ours)."""
    bare_path = workdir / "bare_server.py"
    bare_path.write_text(BARE_SERVER)
    env = {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "APIMP_JOURNAL": str(workdir / "journal.sqlite3"),
        "APIMP_DOWNLOAD_DIR": str(workdir / "videos"),
    }
    return Subject("ours", console_script(), env), Subject("bare", str(bare_path), env)


# --- Raw: JSON-RPC lines on the child's stdin and stdout -----------------------------------------


def jsonrpc_line(message: dict[str, Any]) -> bytes:
    return (json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode()


INITIALIZE: Final = jsonrpc_line(
    {
        "id": INITIALIZE_ID,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "startup-benchmark", "version": "1"},
        },
    }
)
INITIALIZED_AND_LIST: Final = jsonrpc_line({"method": "notifications/initialized"}) + jsonrpc_line(
    {"id": TOOLS_LIST_ID, "method": "tools/list", "params": {}}
)


def read_response(stdout: IO[bytes], request_id: int) -> dict[str, Any]:
    """Read lines until the answer to `request_id`; notifications and log lines are skipped."""
    while True:
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the server closed stdout before answering request {request_id}")
        with suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"request {request_id} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result


@dataclass(frozen=True)
class RawSpawn:
    seconds: float
    tools: int


def raw_spawn(command: Sequence[str], env: dict[str, str], stderr: IO[Any] | int) -> RawSpawn:
    """Time one spawn to its tools/list answer, then kill it (its shutdown is not our concern here).

    Initialize is written before the child is even running (the pipe holds it), as hosts do; the
    rest follows the answer, as the handshake requires.
    """
    started = time.perf_counter()
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
    ) as process:
        watchdog = threading.Timer(SPAWN_TIMEOUT_SECONDS, process.kill)  # a hung child ends readline
        watchdog.start()
        try:
            assert process.stdin is not None  # both are PIPEs
            assert process.stdout is not None
            process.stdin.write(INITIALIZE)
            process.stdin.flush()
            read_response(process.stdout, INITIALIZE_ID)
            process.stdin.write(INITIALIZED_AND_LIST)
            process.stdin.flush()
            listed = read_response(process.stdout, TOOLS_LIST_ID)
            elapsed = time.perf_counter() - started
        finally:
            watchdog.cancel()
            process.kill()
    return RawSpawn(elapsed, len(listed.get("tools", [])))


def raw_seconds(subject: Subject) -> float:
    spawn = raw_spawn(subject.spawned_as, get_default_environment() | subject.env, subprocess.DEVNULL)
    if spawn.tools == 0:
        raise RuntimeError(f"{subject.name} listed no tools")
    return spawn.seconds


# --- SDK: the real client over stdio ---------------------------------------------------------------


async def sdk_spawn_seconds(subject: Subject, errlog: TextIO) -> float:
    """Time from just before the spawn to the first list_tools() answer through the SDK client."""
    command = subject.spawned_as
    parameters = StdioServerParameters(command=command[0], args=command[1:], env=subject.env)
    with anyio.fail_after(SPAWN_TIMEOUT_SECONDS):
        started = time.perf_counter()
        async with Client(stdio_client(parameters, errlog=errlog), mode="legacy") as client:
            listed = await client.list_tools()
            elapsed = time.perf_counter() - started
    if not listed.tools:
        raise RuntimeError(f"{subject.name} listed no tools")
    return elapsed


def sdk_seconds(subject: Subject) -> float:
    """One event loop per spawn, started outside the timed span."""
    with open(os.devnull, "w") as errlog:
        return anyio.run(sdk_spawn_seconds, subject, errlog)


# --- The alternated runs -----------------------------------------------------------------------------

Measure = Callable[[Subject], float]
METHODS: Final[dict[str, Measure]] = {"raw": raw_seconds, "sdk": sdk_seconds}


@dataclass
class Samples:
    """Seconds per (method, subject), in round order, so rounds can be paired."""

    by_key: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, method: str, subject: str, seconds: float) -> None:
        self.by_key[method, subject].append(seconds)

    def get(self, method: str, subject: str) -> list[float]:
        return self.by_key[method, subject]


def run_round(round_index: int, pair: tuple[Subject, Subject], samples: Samples | None) -> None:
    """Each method spawns both servers; which goes first flips every round, so drift hits both."""
    order = pair if round_index % 2 == 0 else (pair[1], pair[0])
    for method, measure in METHODS.items():
        for subject in order:
            seconds = measure(subject)
            if samples is not None:
                samples.add(method, subject.name, seconds)


def quantile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank quantile: with 15 samples, p90 is the 14th."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * MS_PER_SECOND:8.1f}"


def report(samples: Samples, rounds: int) -> None:
    print(f"\n## Spawn to first tools/list answer ({rounds} spawns each, alternated)")
    print(f"{'method':<6} {'server':<6} {'median ms':>9} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
    for method in METHODS:
        for name in ("ours", "bare"):
            values = samples.get(method, name)
            print(
                f"{method:<6} {name:<6} {ms(statistics.median(values)):>9} {ms(quantile(values, 0.9))}"
                f" {ms(min(values))} {ms(max(values))}"
            )
    print()
    for method in METHODS:
        ours, bare = samples.get(method, "ours"), samples.get(method, "bare")
        ratio = statistics.median(ours) / statistics.median(bare)
        paired = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
        extra = (statistics.median(ours) - statistics.median(bare)) * MS_PER_SECOND
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"{method}: ours/bare = {ratio:.2f}x (ratio of medians; median of per-round ratios "
            f"{paired:.2f}x), ours adds {extra:.0f} ms   target <= {TARGET_RATIO:.2f}x: {verdict}"
        )


# --- Why: what ours imports that bare does not -------------------------------------------------------


@dataclass(frozen=True)
class ImportLine:
    module: str
    self_us: int
    depth: int


def parse_importtime(text: str) -> list[ImportLine]:
    """`-X importtime` lines, `import time: self | cumulative | name`; indentation is nesting."""
    parsed = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not self_us.strip().isdigit():  # the header line
            continue
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        parsed.append(ImportLine(name.strip(), int(self_us), depth))
    return parsed


def importers(lines: Sequence[ImportLine]) -> dict[str, str]:
    """Module -> the module whose import pulled it in. The output is post-order (children first),
    so a module's importer is the next line below it with a smaller depth."""
    parent: dict[str, str] = {}
    stack: list[ImportLine] = []
    for line in reversed(lines):
        while stack and stack[-1].depth >= line.depth:
            stack.pop()
        if stack:
            parent[line.module] = stack[-1].module
        stack.append(line)
    return parent


def responsible(module: str, parent: dict[str, str]) -> str:
    """The nearest of our modules up the import chain: where a deferral would have to happen."""
    current: str | None = module
    seen: set[str] = set()  # a module listed twice (a reload) could make the chain a loop
    while current is not None and current not in seen:
        if current.startswith(OUR_PACKAGE):
            return current
        seen.add(current)
        current = parent.get(current)
    return "(run time: imported by a call, not by a module; see the phases below)"


def importtime_spawn(subject: Subject, workdir: Path) -> list[ImportLine]:
    """The real server under -X importtime, answered up to tools/list: lazy imports count too."""
    log_path = workdir / f"importtime-{subject.name}.log"
    with log_path.open("w") as log:
        raw_spawn(subject.command("-X", "importtime"), get_default_environment() | subject.env, log)
    return parse_importtime(log_path.read_text())


@dataclass
class ImportProfile:
    """Median self time per module over several spawns, and who imported it."""

    self_us: dict[str, float]
    parent: dict[str, str]

    @classmethod
    def measure(cls, subject: Subject, workdir: Path, repeats: int) -> ImportProfile:
        runs = [importtime_spawn(subject, workdir) for _ in range(repeats)]
        times: dict[str, list[int]] = defaultdict(list)
        for run in runs:
            per_module: dict[str, int] = defaultdict(int)  # a failed or circular import is listed twice
            for line in run:
                per_module[line.module] += line.self_us
            for module, us in per_module.items():
                times[module].append(us)
        return cls(
            {module: statistics.median(values) for module, values in times.items()}, importers(runs[0])
        )

    @property
    def total_ms(self) -> float:
        return sum(self.self_us.values()) * MS_PER_US


def print_import_breakdown(ours: ImportProfile, bare: ImportProfile, repeats: int) -> None:
    extra = {module: us for module, us in ours.self_us.items() if module not in bare.self_us}
    extra_ms = sum(extra.values()) * MS_PER_US
    print(f"\n## Import breakdown (python -X importtime, spawn to tools/list, median of {repeats} spawns)")
    print(
        f"modules imported: ours {len(ours.self_us)} ({ours.total_ms:.0f} ms), "
        f"bare {len(bare.self_us)} ({bare.total_ms:.0f} ms); "
        f"only ours: {len(extra)} modules, {extra_ms:.0f} ms of their own import time"
    )
    print("(-X importtime inflates every figure; compare them with each other, not with the wall times)")

    by_package: dict[str, float] = defaultdict(float)
    for module, us in extra.items():
        by_package[module.split(".")[0]] += us
    print(f"\nonly-ours import time by top-level package (top {TOP_PACKAGES}):")
    for package, us in sorted(by_package.items(), key=lambda item: -item[1])[:TOP_PACKAGES]:
        print(f"  {us * MS_PER_US:7.1f} ms  {package}")

    by_ours: dict[str, float] = defaultdict(float)
    for module, us in extra.items():
        by_ours[responsible(module, ours.parent)] += us
    print("\nonly-ours import time by the module of ours that pulls it in (where to defer):")
    for module, us in sorted(by_ours.items(), key=lambda item: -item[1])[:TOP_PACKAGES]:
        print(f"  {us * MS_PER_US:7.1f} ms  {module}")

    print(f"\ntop {TOP_MODULES} only-ours modules by their own import time:")
    for module, us in sorted(extra.items(), key=lambda item: -item[1])[:TOP_MODULES]:
        print(f"  {us * MS_PER_US:7.1f} ms  {module:<45} <- {ours.parent.get(module, '(top level)')}")


# --- Why, part two: where the time goes inside one process ---------------------------------------

# Run in a fresh interpreter per sample, so imports are cold for the process (as in a real spawn)
# and not inflated by -X importtime. The SDK client is imported only after the timed imports.
PHASES_SCRIPT: Final = """\
import json, time
started = time.perf_counter()
{imports}
imported = time.perf_counter()
{build}
built = time.perf_counter()
import anyio
from mcp import Client

async def first_list():
    async with Client(server, mode="legacy") as client:
        await client.list_tools()

running = time.perf_counter()
anyio.run(first_list)
listed = time.perf_counter()
print(json.dumps({{"imports": imported - started, "construction": built - imported,
                  "lifespan + first tools/list (in-memory client)": listed - running}}))
"""
OURS_PHASES: Final = PHASES_SCRIPT.format(
    imports="from apimp_video_mcp.cli import main\n"
    "from apimp_video_mcp.config import Settings\n"
    "from apimp_video_mcp.server import build_server",
    build='server = build_server(Settings.from_env(), transport="stdio")',
)
BARE_PHASES: Final = PHASES_SCRIPT.format(
    imports="from mcp.server import MCPServer",
    build='server = MCPServer("bare")\n'
    "@server.tool()\n"
    "def echo(text: str) -> str:\n"
    '    """Return the text unchanged."""\n'
    "    return text",
)

# Our lifespan creates the APIMP HTTP client; bare has none. Timed alone, after the same imports,
# because it is the largest single thing ours does before it can answer.
HTTP_CLIENT_PROBE: Final = """\
import json, time
from apimp_video_mcp.cli import main
from apimp_video_mcp.server import build_server
started = time.perf_counter()
import httpx2
httpx2.AsyncClient()
print(json.dumps({"  of which: the first httpx2.AsyncClient() (ours only)": time.perf_counter() - started}))
"""


def phase_seconds(script: str, env: dict[str, str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=get_default_environment() | env,
        capture_output=True,
        text=True,
        timeout=SPAWN_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the phase probe failed:\n{completed.stderr[-2000:]}")
    phases: dict[str, float] = json.loads(completed.stdout.splitlines()[-1])
    return phases


def print_phases(pair: tuple[Subject, Subject], repeats: int) -> None:
    """Median per phase, ours and bare alternated: imports vs building the server vs running it."""
    scripts = {"ours": OURS_PHASES, "bare": BARE_PHASES}
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "bare": []}
    for _ in range(repeats):
        for subject in pair:
            runs[subject.name].append(phase_seconds(scripts[subject.name], subject.env))
    print(f"\n## Start-up phases in one process (no -X importtime; median of {repeats} fresh interpreters)")
    print(f"{'phase':<54} {'ours ms':>8} {'bare ms':>8} {'extra ms':>9}")
    for phase in runs["ours"][0]:
        ours = statistics.median(run[phase] for run in runs["ours"]) * MS_PER_SECOND
        bare = statistics.median(run[phase] for run in runs["bare"]) * MS_PER_SECOND
        print(f"{phase:<54} {ours:8.1f} {bare:8.1f} {ours - bare:9.1f}")
    http = [phase_seconds(HTTP_CLIENT_PROBE, pair[0].env) for _ in range(repeats)]
    for phase in http[0]:
        ours = statistics.median(run[phase] for run in http) * MS_PER_SECOND
        print(f"{phase:<54} {ours:8.1f} {'-':>8} {ours:9.1f}")


# --- Main ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="spawns of each server per method")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP_ROUNDS, help="uncounted rounds first")
    parser.add_argument(
        "--import-breakdown", action="store_true", help="list the imports only ours makes, and who makes them"
    )
    parser.add_argument("--breakdown-repeats", type=int, default=IMPORTTIME_REPEATS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    print("# Start-up: spawn to first tools/list answer over stdio, ours vs a bare MCPServer")
    print(f"machine: {machine_description()}")
    print(f"source:  {source_state()}")
    print(f"load average before: {load_average()}")
    print(f"command: .venv/bin/python -m benchmarks.startup {shlex.join(sys.argv[1:])}".rstrip())
    with tempfile.TemporaryDirectory(prefix="apimp-startup-") as tmp:
        workdir = Path(tmp)
        pair = subjects(workdir)
        for subject in pair:
            print(f"{subject.name}: {shlex.join(subject.spawned_as)}")
        print(f"env (both): {' '.join(f'{key}={value}' for key, value in pair[0].env.items())}")
        for index in range(args.warmup):
            run_round(index, pair, None)
        samples = Samples()
        for index in range(args.rounds):
            run_round(index, pair, samples)
        report(samples, args.rounds)
        if args.import_breakdown:
            profiles = [ImportProfile.measure(subject, workdir, args.breakdown_repeats) for subject in pair]
            print_import_breakdown(profiles[0], profiles[1], args.breakdown_repeats)
            print_phases(pair, args.breakdown_repeats)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
