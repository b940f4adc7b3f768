"""Three server processes behind HAProxy on one PostgreSQL; one is SIGKILLed in the middle of waits.

The real thing, on loopback: the installed console script three times (tests/support/cluster.py),
Debian's HAProxy balancing round-robin, the session's PostgreSQL, and the APIMP simulator in this
process counting every request. Many clients wait on a few tasks through the balancer; the
instance holding the most polling leases is killed, and only then do the tasks end upstream. Its
clients' calls break, they call again through the balancer and finish; its tasks are polled again
by a survivor once its leases lapse; no task is lost and none is submitted twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client

from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from tests.support import Upstream, missing_system_package, structured
from tests.support.cluster import Cluster, haproxy_binary, running_cluster
from tests.support.processes import child_environment

pytestmark = pytest.mark.anyio

TASKS = 6
WAITERS_PER_TASK = 5
SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a kite over the dunes"}}


@pytest.fixture
def haproxy() -> str:
    found = haproxy_binary()
    if found is None:
        missing_system_package(
            "HAProxy is not installed (apt-get install haproxy, or run .ci/install-services.sh)"
        )
    return found


def cluster_environment(upstream: Upstream, postgres_url: str) -> dict[str, str]:
    return child_environment(
        APIMP_API_KEY=SIMULATOR_API_KEY,
        APIMP_BASE_URL=upstream.base_url,
        APIMP_JOURNAL=postgres_url,
        APIMP_HTTP_STATELESS="on",
        APIMP_POLL_MIN_INTERVAL="0.1",
        APIMP_POLL_MAX_INTERVAL="0.2",
        APIMP_PROGRESS_INTERVAL="0.5",
        # Short leases keep the takeover within the test's few seconds.
        APIMP_POLL_LEASE="1",
        APIMP_CLUSTER_REREAD="0.2",
    )


class Waiter:
    """One client waiting for one task through the balancer, calling again when a call breaks."""

    def __init__(self, cluster: Cluster, task_id: str) -> None:
        self.cluster = cluster
        self.task_id = task_id
        self.broken_calls = 0
        self.result: dict[str, Any] | None = None

    async def run(self) -> None:
        while self.result is None:
            try:
                async with Client(self.cluster.url) as client:
                    answer = structured(
                        await client.call_tool(
                            "wait_for_video",
                            {"task_id": self.task_id, "timeout_seconds": 5, "download": False},
                        )
                    )
            except Exception:  # the instance died under the call: the balancer sends the next elsewhere
                self.broken_calls += 1
                await anyio.sleep(0.1)
                continue
            if answer["done"]:
                self.result = answer


async def leases(postgres_url: str) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT task_id, owner FROM task_polls")
        return dict(await cursor.fetchall())


async def test_a_killed_instance_loses_no_task_and_no_waiter(
    upstream: Upstream, tmp_path: Path, postgres_url: str, haproxy: str
) -> None:
    upstream.simulator.task_duration_seconds = 600.0  # the tasks end when the test says, after the kill
    environment = cluster_environment(upstream, postgres_url)
    with anyio.fail_after(180):
        async with running_cluster(environment, tmp_path, instances=3, haproxy=haproxy) as cluster:
            async with Client(cluster.url) as client:
                task_ids = [
                    structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
                    for _ in range(TASKS)
                ]
            waiters = [Waiter(cluster, task_id) for task_id in task_ids for _ in range(WAITERS_PER_TASK)]
            async with anyio.create_task_group() as group:
                for waiter in waiters:
                    group.start_soon(waiter.run)
                # Until every task has its poller (a database has no event to wait on).
                while len(owned := await leases(postgres_url)) < TASKS:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
                owners = sorted(set(owned.values()), key=lambda owner: -list(owned.values()).count(owner))
                victim = cluster.instance_with_pid(int(owners[0].split(":")[1]))
                victims_tasks = {task_id for task_id, owner in owned.items() if owner == owners[0]}
                status_requests_before_kill = len(upstream.simulator.requests_to("/api/generate/status"))
                victim.kill()
                for task_id in task_ids:  # only a poller alive after the kill can see the end
                    upstream.simulator.finish_now(task_id)

    after_kill = upstream.simulator.requests_to("/api/generate/status")[status_requests_before_kill:]
    polled_again = {task_id for task_id in victims_tasks if any(task_id in r.path for r in after_kill)}
    assert [waiter.result["status"] for waiter in waiters if waiter.result] == ["finished"] * len(waiters)
    assert sum(waiter.broken_calls for waiter in waiters) > 0  # the kill did cut calls in flight
    assert polled_again == victims_tasks  # taken over by a survivor
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == TASKS  # none submitted twice
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT task_id, status FROM tasks ORDER BY task_id")
        assert sorted(await cursor.fetchall()) == sorted((task_id, "finished") for task_id in task_ids)
