"""Benchmark 1: how soon a task's end is noticed, and how many status requests it costs.

A population over every progress shape the simulator has (none, linear, slow-start, early-fast,
stalled-then-jumping, eased), durations from 3 s to 6 min that depend on the model and the
format (resolution, clip length), and about 10 % fast failures (a refused prompt fails 2-6 s
after the submit). It is waited on through the real MCP server (the SDK's in-memory Client,
submit_video then wait_for_video on every task at once) twice: with an empty journal, and with
a journal holding the history of an earlier population drawn the same way (so the schedule can
learn typical durations per model and format). The same population is then polled by naive
fixed 2 s and 5 s pollers. The simulator and the server run on one clock `--time-scale` times
faster than real time; every figure is in unscaled (real-world) seconds.

Latency is from the upstream end (finished or failed) to the return of wait_for_video.

    python -m benchmarks.detection [--tasks 120] [--time-scale 3] [--seed 1]

Each wait starts right after its submit, as an agent's would. A loaded machine delays the event
loop, and every real millisecond of delay is `--time-scale` simulated ones: keep the scale low.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from pydantic import SecretStr

from apimp_video_mcp import defaults
from apimp_video_mcp.catalog import VIDEO_MODEL_IDS, generation_time
from apimp_video_mcp.config import Settings
from apimp_video_mcp.models import TaskSnapshot
from apimp_video_mcp.polling.durations import typical_duration
from apimp_video_mcp.polling.pollers import AdaptiveSchedule, PollHistory, ScaledClock
from apimp_video_mcp.server import build_server
from apimp_video_mcp.simulator import (
    PROGRESS_SHAPES,
    SIMULATOR_API_KEY,
    ProgressShape,
    Simulator,
    running_simulator,
)
from apimp_video_mcp.simulator.progress import progress_at
from apimp_video_mcp.store import SqliteTaskStore
from benchmarks._machine import print_header

TARGET_MEDIAN_SECONDS = 1.0
TARGET_P90_SECONDS = 2.0
TARGET_FAST_FAILURE_SECONDS = 2.0
TARGET_RATIO_EMPTY = 1 / 2
TARGET_RATIO_HISTORY = 1 / 3
AUTH = {"authorization": f"Bearer {SIMULATOR_API_KEY}"}
FAST_FAILURE_SHARE = 0.10
SHORT_TASK_SHARE = 0.10  # 3-30 s: cached or tiny renders
# How much longer a format takes than the catalog's typical 720p/8 s clip (assumed, for the test).
RESOLUTION_FACTOR = {"720p": 0.8, "1080p": 1.0, "4k": 1.6}
CLIP_FACTOR = {4: 0.6, 6: 0.8, 8: 1.0}
REFUSED = "The prompt was refused by the content policy."


@dataclass(frozen=True)
class PlannedTask:
    model: str
    resolution: str
    clip_seconds: int
    shape: ProgressShape
    duration_seconds: float  # until it ends: finished, or failed for a fast failure
    fast_failure: bool

    def body(self) -> dict[str, Any]:
        metadata = {"resolution": self.resolution, "durationSeconds": self.clip_seconds}
        return {"model": self.model, "input": {"prompt": "bench", "metadata": metadata}}


def make_population(tasks: int, seed: int) -> list[PlannedTask]:
    rng = random.Random(seed)
    population = []
    for _ in range(tasks):
        model = rng.choice(VIDEO_MODEL_IDS)
        resolution = rng.choice(["720p", "1080p", "4k"] if model.startswith("veo-3.1") else ["720p", "1080p"])
        clip = rng.choice([4, 6, 8])
        shape = rng.choice(PROGRESS_SHAPES)
        draw = rng.random()
        if draw < FAST_FAILURE_SHARE:
            population.append(PlannedTask(model, resolution, clip, shape, rng.uniform(2.0, 6.0), True))
            continue
        if draw < FAST_FAILURE_SHARE + SHORT_TASK_SHARE:
            seconds = math.exp(rng.uniform(math.log(3.0), math.log(30.0)))
        else:
            assumed = generation_time(model)
            seconds = rng.triangular(
                assumed.shortest_seconds, assumed.longest_seconds, assumed.typical_seconds
            )
            seconds *= RESOLUTION_FACTOR[resolution] * CLIP_FACTOR[clip]
        population.append(PlannedTask(model, resolution, clip, shape, min(max(seconds, 3.0), 360.0), False))
    return population


def simulator_for(population: list[PlannedTask], time_scale: float) -> Simulator:
    """Tasks get the population's durations and shapes in submission order."""
    durations = deque(task.duration_seconds for task in population)
    shapes = deque(task.shape for task in population)
    return Simulator(
        task_duration_seconds=lambda model: durations.popleft(),
        progress_shape=lambda model: shapes.popleft(),
        time_scale=time_scale,
        seed=7,
    )


def plan_next(simulator: Simulator, task: PlannedTask) -> None:
    """Called right before the task's submit: a fast failure is set up for exactly that task."""
    if task.fast_failure:
        simulator.fail_next_tasks(1, REFUSED, after_seconds=task.duration_seconds)


async def write_history(journal_path: Path, population: list[PlannedTask]) -> None:
    """A journal as an earlier run leaves it: the population's tasks, finished at their durations."""
    journal = SqliteTaskStore(journal_path)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        for index, task in enumerate(population):
            entry_id = await journal.record_submission(task.model, task.body(), principal="local")
            task_id = f"task_history_{index:05d}"
            created = (start + timedelta(minutes=index)).isoformat(timespec="seconds")
            first = {"task_id": task_id, "status": "not_started", "created_time": created}
            await journal.record_accepted(entry_id, TaskSnapshot.from_wire(first))
            ended = start + timedelta(minutes=index, seconds=task.duration_seconds)
            end = {
                **first,
                "status": "failed" if task.fast_failure else "finished",
                "finished_time": ended.isoformat(timespec="seconds"),
                "error_message": REFUSED if task.fast_failure else None,
            }
            await journal.record_status(TaskSnapshot.from_wire(end), principal="local")
    finally:
        await journal.close()


@dataclass
class Result:
    name: str
    population: list[PlannedTask]
    latencies_seconds: list[float]
    requests_per_task: list[int]

    def median(self) -> float:
        return statistics.median(self.latencies_seconds)

    def p90(self) -> float:
        return _quantile(self.latencies_seconds, 0.9)

    def worst_fast_failure(self) -> float:
        return max(
            latency
            for latency, task in zip(self.latencies_seconds, self.population, strict=True)
            if task.fast_failure
        )

    def mean_requests(self) -> float:
        return statistics.mean(self.requests_per_task)

    def row(self, baseline_requests: float) -> str:
        return (
            f"{self.name:<26} {self.median():>7.2f} {self.p90():>7.2f} {max(self.latencies_seconds):>7.2f}"
            f" {self.worst_fast_failure():>10.2f} {self.mean_requests():>13.1f}"
            f" {self.mean_requests() / baseline_requests:>11.2f}"
        )

    def by_shape(self) -> list[str]:
        """Where the latency and the requests go: one line per progress shape (fast failures apart)."""
        lines = []
        groups: dict[str, list[int]] = {}
        for index, task in enumerate(self.population):
            groups.setdefault("fast failure" if task.fast_failure else task.shape, []).append(index)
        for name, indexes in sorted(groups.items()):
            latencies = [self.latencies_seconds[i] for i in indexes]
            requests = [self.requests_per_task[i] for i in indexes]
            durations = [self.population[i].duration_seconds for i in indexes]
            lines.append(
                f"  {name:<22} n={len(indexes):<4} median {statistics.median(latencies):6.2f}"
                f"  p90 {_quantile(latencies, 0.9):6.2f}  worst {max(latencies):6.2f}"
                f"  requests/task {statistics.mean(requests):5.1f}"
                f" (fixed 2 s: {statistics.mean(math.ceil(d / 2.0) + 1 for d in durations):5.1f})"
            )
        return lines


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    simulator: Simulator, name: str, population: list[PlannedTask], noticed_at: list[float]
) -> Result:
    scale = simulator.time_scale
    tasks = list(simulator.tasks.values())
    latencies = [
        (noticed - task.finished_at(scale)) * scale for noticed, task in zip(noticed_at, tasks, strict=True)
    ]
    requests = [len(simulator.requests_to(f"/api/generate/status/{task.task_id}")) for task in tasks]
    return Result(name, population, latencies, requests)


async def adaptive(
    name: str, population: list[PlannedTask], time_scale: float, workdir: Path, history: list[PlannedTask]
) -> Result:
    """Our server: submit_video, then wait_for_video on every task at once."""
    journal_path = workdir / "journal.sqlite3"
    if history:
        await write_history(journal_path, history)
    simulator = simulator_for(population, time_scale)
    noticed_at = [0.0] * len(population)
    async with running_simulator(simulator) as base_url:
        settings = Settings(
            api_key=SecretStr(SIMULATOR_API_KEY),
            base_url=base_url,
            download_dir=workdir / "videos",
            journal_path=str(journal_path),
            wait_timeout_seconds=3600.0,
            confirm_above_cost=None,  # measures polling: nobody is there to approve prices
        )
        async with (
            Client(build_server(settings, clock=ScaledClock(time_scale))) as client,
            anyio.create_task_group() as group,
        ):

            async def wait(index: int, task_id: str) -> None:
                arguments = {"task_id": task_id, "download": False, "timeout_seconds": 3600}
                result = await client.call_tool("wait_for_video", arguments)
                noticed_at[index] = time.monotonic()
                assert result.structured_content is not None, result
                assert result.structured_content["done"], result.structured_content

            # Each wait starts as soon as its task is submitted, as an agent's would.
            for index, task in enumerate(population):
                plan_next(simulator, task)
                submitted = await client.call_tool("submit_video", task.body())
                assert submitted.structured_content is not None, submitted
                group.start_soon(wait, index, str(submitted.structured_content["task_id"]))
    return measure(simulator, name, population, noticed_at)


async def fixed_interval(population: list[PlannedTask], time_scale: float, interval_seconds: float) -> Result:
    """The obvious alternative: ask every `interval_seconds` until the task has ended."""
    simulator = simulator_for(population, time_scale)
    noticed_at = [0.0] * len(population)
    async with running_simulator(simulator) as base_url, httpx2.AsyncClient(base_url=base_url) as http:

        async def poll(index: int, task_id: str) -> None:
            while True:
                response = await http.get(f"/api/generate/status/{task_id}", headers=AUTH)
                if response.json()["data"]["status"] in ("finished", "failed"):
                    noticed_at[index] = time.monotonic()
                    return
                await anyio.sleep(interval_seconds / time_scale)

        async with anyio.create_task_group() as group:
            for index, task in enumerate(population):
                plan_next(simulator, task)
                response = await http.post("/api/generate/submit", json=task.body(), headers=AUTH)
                group.start_soon(poll, index, response.json()["data"]["task_id"])
    return measure(simulator, f"fixed {interval_seconds:g} s", population, noticed_at)


def replay_on_paper(task: PlannedTask, typical_seconds: float, rng: random.Random) -> tuple[float, int]:
    """The schedule alone, with no machine: the simulator's progress for `task`, polled on paper.

    Returns how late the end is seen and how many polls it took. Beside the measured figures it
    tells the schedule's own cost from what a loaded machine adds.
    """
    schedule = AdaptiveSchedule()
    seen = PollHistory(typical_duration_seconds=typical_seconds, first_seen=0.0)
    queued = (
        0.5 if task.fast_failure else min(task.duration_seconds * 0.5, max(task.duration_seconds * 0.08, 0.5))
    )
    now, polls = 0.0, 0
    while True:
        polls += 1
        if now >= task.duration_seconds:
            return now - task.duration_seconds, polls
        fraction = (now - queued) / max(task.duration_seconds - queued, 1e-9)
        status, progress = (
            ("not_started", 0) if now < queued else ("running", progress_at(task.shape, fraction))
        )
        seen.add(
            now, TaskSnapshot.from_wire({"task_id": "task_paper", "status": status, "progress": progress})
        )
        now += schedule.next_delay_seconds(seen, now, rng)


def learned_on_paper(task: PlannedTask, history: list[PlannedTask]) -> float:
    """What `durations.learned_typical_duration` would learn from `history` for this task."""
    model = [h.duration_seconds for h in history if h.model == task.model and not h.fast_failure]
    same = [
        h.duration_seconds
        for h in history
        if h.model == task.model
        and not h.fast_failure
        and (h.resolution, h.clip_seconds) == (task.resolution, task.clip_seconds)
    ]
    enough = len(same) >= defaults.TYPICAL_DURATION_MIN_SAMPLES
    return typical_duration(task.model, same if enough else model).seconds


def on_paper(name: str, population: list[PlannedTask], typical: list[float]) -> Result:
    rng = random.Random(0)
    replays = [replay_on_paper(task, seconds, rng) for task, seconds in zip(population, typical, strict=True)]
    return Result(name, population, [late for late, _ in replays], [polls for _, polls in replays])


def verdict(measured: float, target: float) -> str:
    return "met" if measured <= target else "MISSED"


def print_targets(label: str, result: Result, baseline: float, ratio_target: float) -> None:
    ratio = result.mean_requests() / baseline
    print(f"targets, {label}:")
    for name, measured, target in (
        ("median latency s", result.median(), TARGET_MEDIAN_SECONDS),
        ("p90 latency s", result.p90(), TARGET_P90_SECONDS),
        ("fast failures noticed within s", result.worst_fast_failure(), TARGET_FAST_FAILURE_SECONDS),
        ("requests vs fixed 2 s", ratio, ratio_target),
    ):
        print(
            f"  {name:<32} target <= {target:5.2f}   measured {measured:6.2f}   {verdict(measured, target)}"
        )


async def run(tasks: int, time_scale: float, seed: int) -> None:
    population = make_population(tasks, seed)
    history = make_population(tasks, seed + 1000)  # an earlier population, drawn the same way
    durations = sorted(task.duration_seconds for task in population)
    shapes = ", ".join(PROGRESS_SHAPES)
    print(
        f"population: {tasks} tasks, durations {durations[0]:.0f}-{durations[-1]:.0f} s (median "
        f"{statistics.median(durations):.0f} s), {sum(t.fast_failure for t in population)} fast failures, "
        f"shapes {shapes}; time scale {time_scale:g}x"
    )
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as learned:
        cold = await adaptive("adaptive, empty journal", population, time_scale, Path(empty), [])
        warm = await adaptive("adaptive, with history", population, time_scale, Path(learned), history)
    every_two = await fixed_interval(population, time_scale, 2.0)
    every_five = await fixed_interval(population, time_scale, 5.0)
    baseline = every_two.mean_requests()
    print()
    print(
        f"{'strategy':<26} {'median':>7} {'p90':>7} {'worst':>7} {'fast fail':>10} {'requests/task':>13}"
        f" {'vs fixed 2s':>11}   (latency in s)"
    )
    for result in (cold, warm, every_two, every_five):
        print(result.row(baseline))
    print()
    print_targets("empty journal", cold, baseline, TARGET_RATIO_EMPTY)
    print_targets("with history", warm, baseline, TARGET_RATIO_HISTORY)
    for result in (cold, warm):
        print()
        print(f"where it goes, {result.name} (by progress shape):")
        print("\n".join(result.by_shape()))
    paper_empty = on_paper(
        "paper, empty journal", population, [typical_duration(t.model).seconds for t in population]
    )
    paper_history = on_paper(
        "paper, with history", population, [learned_on_paper(t, history) for t in population]
    )
    ideal = statistics.mean(math.ceil(task.duration_seconds / 2.0) + 1 for task in population)
    print()
    print("the schedule alone, replayed on paper over the same population (no machine, no event loop):")
    for result in (paper_empty, paper_history):
        print(result.row(ideal) + "   (ratio vs an ideal fixed 2 s poller)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=120)
    parser.add_argument("--time-scale", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_header("Detection latency and request cost", "python -m benchmarks.detection")
    anyio.run(run, args.tasks, args.time_scale, args.seed)


if __name__ == "__main__":
    main()
