"""What every benchmark prints with its figures: the machine, the code and the load it ran under;
and what /proc says of the processes it measures.

Figures mean nothing without them, on a shared 2-core machine least of all.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


def machine_description() -> str:
    """The cores this process may use, the CPU model and the Python."""
    cpu = "unknown CPU"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    return (
        f"nproc {len(os.sched_getaffinity(0))}, {cpu}, Python {platform.python_version()} ({sys.executable})"
    )


def load_average() -> str:
    """The 1/5/15-minute load: on a shared machine it says how much of the CPU was ours."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def source_state() -> str:
    """Which code was measured: HEAD, and whether src/ had uncommitted changes (read-only git)."""

    def git(*args: str) -> str:
        completed = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return completed.stdout.strip() if completed.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("--no-optional-locks", "status", "--porcelain", "--", "src")  # never writes the index
    return f"commit {head}" + (
        f" + uncommitted changes in src/ ({len(dirty.splitlines())} files)" if dirty else ""
    )


def print_header(title: str, command: str) -> None:
    print(f"# {title}")
    print(f"machine: {machine_description()}")
    print(f"source:  {source_state()}")
    print(f"load average before: {load_average()}")
    print(f"command: {command}")
    print(f"argv:    {' '.join(sys.argv)}")


@dataclass(frozen=True)
class ProcessSample:
    """One reading of /proc for a process."""

    rss_kib: int
    hwm_kib: int
    cpu_seconds: float


def read_process(pid: int) -> ProcessSample:
    """VmRSS/VmHWM from /proc/PID/status, utime+stime from /proc/PID/stat."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces; it ends at ')'
    ticks = int(after_name[11]) + int(after_name[12])  # fields 14 and 15 of proc(5): utime, stime
    return ProcessSample(
        rss_kib=int(fields["VmRSS"].split()[0]),
        hwm_kib=int(fields["VmHWM"].split()[0]),
        cpu_seconds=ticks / os.sysconf("SC_CLK_TCK"),
    )
