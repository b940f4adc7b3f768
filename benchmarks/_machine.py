"""What every benchmark prints first: the machine its figures come from."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def describe_machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def print_header(title: str, command: str) -> None:
    print(f"# {title}")
    print(f"machine: {describe_machine()}")
    print(f"command: {command}")
    print(f"argv:    {' '.join(sys.argv)}")
