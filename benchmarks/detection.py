"""Benchmark 1: how soon a finished video is noticed, and how many status requests it costs.

A population of simulated tasks with Veo-like durations (30 s to 6 min, eased non-linear
progress) is waited on through the real MCP server (the SDK's in-memory Client), and the same
population again by naive pollers at fixed 2 s and 5 s intervals. The simulator and the server
run on one clock `--time-scale` times faster than real time, so minutes take seconds; every
figure is reported in unscaled (real-world) seconds.

    python -m benchmarks.detection [--tasks 200] [--time-scale 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from pydantic import SecretStr

from apimp_video_mcp.catalog import VIDEO_MODEL_IDS
from apimp_video_mcp.config import Settings
from apimp_video_mcp.polling import ScaledClock
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator, veo_like_duration
from benchmarks._machine import print_header

TARGET_MEDIAN_LATENCY_SECONDS = 1.0
TARGET_REQUEST_RATIO = 1 / 3
AUTH = {"authorization": f"Bearer {SIMULATOR_API_KEY}"}


@dataclass
class Population:
    models: list[str]
    durations_seconds: list[float]


@dataclass
class Result:
    name: str
    latencies_seconds: list[float]
    requests_per_task: list[int]

    def row(self, baseline_requests: float) -> str:
        latencies = sorted(self.latencies_seconds)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        mean_requests = statistics.mean(self.requests_per_task)
        return (
            f"{self.name:<22} {statistics.median(latencies):>9.2f} {p95:>8.2f} {max(latencies):>8.2f}"
            f" {mean_requests:>14.1f} {mean_requests / baseline_requests:>12.2f}"
        )


def make_population(tasks: int, seed: int) -> Population:
    rng = random.Random(seed)
    models: list[str] = [rng.choice(VIDEO_MODEL_IDS) for _ in range(tasks)]
    return Population(models, [veo_like_duration(model, rng) for model in models])


def simulator_for(population: Population, time_scale: float) -> Simulator:
    """Tasks get the population's durations in submission order."""
    queue = deque(population.durations_seconds)
    return Simulator(task_duration_seconds=lambda model: queue.popleft(), time_scale=time_scale, seed=7)


def measure(simulator: Simulator, name: str, noticed_at: dict[str, float]) -> Result:
    scale = simulator.time_scale
    latencies = [
        (noticed_at[task_id] - task.finished_at(scale)) * scale for task_id, task in simulator.tasks.items()
    ]
    requests = [len(simulator.requests_to(f"/api/generate/status/{task_id}")) for task_id in simulator.tasks]
    return Result(name, latencies, requests)


async def adaptive(population: Population, time_scale: float, workdir: Path) -> Result:
    """Our server: submit_video, then wait_for_video on every task at once."""
    simulator = simulator_for(population, time_scale)
    noticed_at: dict[str, float] = {}
    async with running_simulator(simulator) as base_url:
        settings = Settings(
            api_key=SecretStr(SIMULATOR_API_KEY),
            base_url=base_url,
            download_dir=workdir / "videos",
            journal_path=str(workdir / "journal.sqlite3"),
            wait_timeout_seconds=3600.0,
            confirm_above_cost=None,  # measures polling: nobody is there to approve prices
        )
        async with Client(build_server(settings, clock=ScaledClock(time_scale))) as client:
            task_ids = []
            for model in population.models:
                submitted = await client.call_tool(
                    "submit_video", {"model": model, "input": {"prompt": "bench"}}
                )
                assert submitted.structured_content is not None, submitted
                task_ids.append(str(submitted.structured_content["task_id"]))

            async def wait(task_id: str) -> None:
                result = await client.call_tool("wait_for_video", {"task_id": task_id, "download": False})
                noticed_at[task_id] = time.monotonic()
                assert result.structured_content is not None, result
                assert result.structured_content["status"] == "finished", result.structured_content

            async with anyio.create_task_group() as group:
                for task_id in task_ids:
                    group.start_soon(wait, task_id)
    return measure(simulator, "adaptive (this server)", noticed_at)


async def fixed_interval(population: Population, time_scale: float, interval_seconds: float) -> Result:
    """The obvious alternative: ask every `interval_seconds` until finished."""
    simulator = simulator_for(population, time_scale)
    noticed_at: dict[str, float] = {}
    async with running_simulator(simulator) as base_url, httpx2.AsyncClient(base_url=base_url) as http:
        task_ids = []
        for model in population.models:
            response = await http.post(
                "/api/generate/submit", json={"model": model, "input": {"prompt": "bench"}}, headers=AUTH
            )
            task_ids.append(response.json()["data"]["task_id"])

        async def poll(task_id: str) -> None:
            while True:
                response = await http.get(f"/api/generate/status/{task_id}", headers=AUTH)
                if response.json()["data"]["status"] == "finished":
                    noticed_at[task_id] = time.monotonic()
                    return
                await anyio.sleep(interval_seconds / time_scale)

        async with anyio.create_task_group() as group:
            for task_id in task_ids:
                group.start_soon(poll, task_id)
    return measure(simulator, f"fixed {interval_seconds:g} s", noticed_at)


async def run(tasks: int, time_scale: float, seed: int) -> None:
    population = make_population(tasks, seed)
    durations = sorted(population.durations_seconds)
    print(
        f"population: {tasks} tasks, durations {durations[0]:.0f}-{durations[-1]:.0f} s "
        f"(median {statistics.median(durations):.0f} s), time scale {time_scale:g}x"
    )
    with tempfile.TemporaryDirectory() as workdir:
        ours = await adaptive(population, time_scale, Path(workdir))
    every_two = await fixed_interval(population, time_scale, 2.0)
    every_five = await fixed_interval(population, time_scale, 5.0)
    baseline = statistics.mean(every_two.requests_per_task)
    print()
    header = ("strategy", "median s", "p95 s", "max s", "requests/task", "vs fixed 2s")
    print(f"{header[0]:<22} {header[1]:>9} {header[2]:>8} {header[3]:>8} {header[4]:>14} {header[5]:>12}")
    for result in (ours, every_two, every_five):
        print(result.row(baseline))
    ratio = statistics.mean(ours.requests_per_task) / baseline
    median = statistics.median(ours.latencies_seconds)
    print()
    print(f"target: median latency <= {TARGET_MEDIAN_LATENCY_SECONDS:g} s   measured: {median:.2f} s")
    print(f"target: requests <= {TARGET_REQUEST_RATIO:.2f} of fixed 2 s   measured: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_header("Detection latency and request cost", "python -m benchmarks.detection")
    anyio.run(run, args.tasks, args.time_scale, args.seed)


if __name__ == "__main__":
    main()
