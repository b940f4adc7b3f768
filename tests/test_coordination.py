"""One poller per task across instances: leases and change notices in a real PostgreSQL.

Each "instance" here is a whole `VideoService` with its own HTTP client, store connections and
coordination, all on one database and one simulator, as the processes of a cluster would be.
The multi-process test behind a real load balancer is `tests/test_cluster.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot
from apimp_video_mcp.polling.coordination import ClusterCoordination
from apimp_video_mcp.polling.pollers import wait_for_task
from apimp_video_mcp.service import VideoService, _coordination
from apimp_video_mcp.store import SqliteTaskStore
from apimp_video_mcp.store.postgres import PostgresTaskStore
from apimp_video_mcp.upstream.client import ApimpClient
from tests.support import Upstream, fast_settings

pytestmark = pytest.mark.anyio

SUBMIT = SubmitRequest.model_validate(
    {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a paper boat on a river"}}
)


class Instance:
    """A service of its own on the shared database, counting the status requests it sends."""

    def __init__(self, service: VideoService) -> None:
        self.service = service
        self.status_requests = 0
        original = service.client.get_status

        async def counted(task_id: str, **options: Any) -> TaskSnapshot:
            self.status_requests += 1
            return await original(task_id, **options)

        service.client.get_status = counted  # type: ignore[method-assign]


@asynccontextmanager
async def running_instance(upstream: Upstream, tmp_path: Path, postgres_url: str) -> AsyncIterator[Instance]:
    settings = fast_settings(
        upstream.base_url,
        tmp_path / "videos",
        journal_path=postgres_url,
        poll_lease_seconds=30.0,  # never lapses by itself here: the tests expire leases on purpose
        cluster_reread_seconds=0.05,
    )
    store = PostgresTaskStore(postgres_url)
    async with httpx2.AsyncClient(base_url=upstream.base_url) as http:
        service = VideoService(settings, ApimpClient(lambda: http, settings.require_api_key), store)
        try:
            async with service.running():
                yield Instance(service)
        finally:
            await store.close()


async def leases(postgres_url: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT task_id, owner FROM task_polls ORDER BY task_id")
        return [(task_id, owner) for task_id, owner in await cursor.fetchall()]


async def test_waiters_on_two_instances_share_one_poller(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_instance(upstream, tmp_path / "a", postgres_url))
        second = await stack.enter_async_context(running_instance(upstream, tmp_path / "b", postgres_url))
        task_id = (await first.service.submit(SUBMIT)).task_id
        results = []

        async def wait(instance: Instance) -> None:
            results.append(await instance.service.wait(task_id, download=False))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for instance in (first, second, first, second):
                    group.start_soon(wait, instance)

    assert [result.status for result in results] == ["finished"] * 4
    requests = sorted([first.status_requests, second.status_requests])
    assert requests[0] == 0  # the instance without the lease only read the store
    assert requests[1] >= 1
    assert await leases(postgres_url) == []  # given back once the task ended


async def test_a_follower_takes_over_once_the_owners_lease_lapses(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    store = await PostgresTaskStore.open(postgres_url)
    async with running_instance(upstream, tmp_path, postgres_url) as instance:
        task_id = (await instance.service.submit(SUBMIT)).task_id
        # Another instance polls the task, then dies: its lease stands until it lapses.
        assert (await store.claim_polling(task_id, "dead-instance", 3600)).held
        halfway = anyio.Event()
        messages: list[str] = []

        async def report(progress: float, message: str) -> None:
            messages.append(message)
            if "50%" in message:
                halfway.set()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                waited: list[Any] = []

                async def wait() -> None:
                    waited.append(await instance.service.wait(task_id, download=False, report=report))

                group.start_soon(wait)
                # What the owner wrote before it died reaches the waiter through the store alone.
                await store.record_status(
                    TaskSnapshot.from_wire({"task_id": task_id, "status": "running", "progress": 50}),
                    principal=LOCAL_PRINCIPAL_ID,
                )
                await halfway.wait()
                requests_while_owned = instance.status_requests
                async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
                    await conn.execute("UPDATE task_polls SET lease_until = now() - interval '1 second'")
    await store.close()

    assert requests_while_owned == 0
    assert instance.status_requests >= 1
    assert waited[0].status == "finished"
    assert await leases(postgres_url) == []


async def test_a_poller_starting_after_another_instance_saw_the_end_asks_nothing(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    async with running_instance(upstream, tmp_path, postgres_url) as instance:
        task_id = (await instance.service.submit(SUBMIT)).task_id
        # Another instance polled the task to its end and let go of it just before this one starts.
        await instance.service.journal.record_status(
            TaskSnapshot.from_wire({"task_id": task_id, "status": "finished", "progress": 100}),
            principal=LOCAL_PRINCIPAL_ID,
        )
        with anyio.fail_after(10):
            outcome = await wait_for_task(
                instance.service.pollers, task_id, timeout_seconds=5, report=ignore_progress
            )

    assert outcome.snapshot is not None
    assert outcome.snapshot.status == "finished"
    assert instance.status_requests == 0


async def ignore_progress(progress: float, message: str) -> None:
    del progress, message


async def test_leases_are_claimed_once_renewed_by_their_owner_and_given_back(postgres_url: str) -> None:
    store = await PostgresTaskStore.open(postgres_url)
    claims = [
        await store.claim_polling("task_1", "a", 30),
        await store.claim_polling("task_1", "b", 30),
        await store.claim_polling("task_1", "a", 30),  # a renewal
    ]
    await store.release_polling("task_1", "b")  # not b's to give back
    held_after_wrong_release = await leases(postgres_url)
    await store.release_polling("task_1", "a")
    free_after_release = (await store.claim_polling("task_1", "b", 0)).held  # lapses at once
    lapsed_taken_over = (await store.claim_polling("task_1", "a", 30)).held
    await store.close()

    assert [claim.held for claim in claims] == [True, False, True]
    assert [claim.lapses_in_seconds is None for claim in (claims[0], claims[2])] == [True, True]
    assert claims[1].lapses_in_seconds is not None
    assert 0 < claims[1].lapses_in_seconds <= 30  # a's lease, as b was told
    assert held_after_wrong_release == [("task_1", "a")]
    assert free_after_release
    assert lapsed_taken_over
    assert await leases(postgres_url) == [("task_1", "a")]


async def test_every_status_change_is_announced_to_listeners(postgres_url: str) -> None:
    writer = await PostgresTaskStore.open(postgres_url)
    listener = PostgresTaskStore(postgres_url)
    heard: list[str | None] = []
    listening, enough = anyio.Event(), anyio.Event()

    def on_change(task_id: str | None) -> None:
        heard.append(task_id)
        if task_id is None:
            listening.set()
        if heard.count("task_1") == 2:
            enough.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(listener.listen_for_changes, on_change)
            await listening.wait()
            for progress in (10, 10, 20):  # the repeat is no change, and is not announced
                await writer.record_status(
                    TaskSnapshot.from_wire({"task_id": "task_1", "status": "running", "progress": progress}),
                    principal=LOCAL_PRINCIPAL_ID,
                )
            await enough.wait()
            group.cancel_scope.cancel()
    await writer.close()

    assert heard == [None, "task_1", "task_1"]


def test_a_cluster_store_gets_coordination_and_a_file_does_not(tmp_path: Path) -> None:
    settings = fast_settings("http://127.0.0.1:1", tmp_path / "videos")
    assert _coordination(settings, SqliteTaskStore(":memory:")) is None
    assert isinstance(
        _coordination(settings, PostgresTaskStore("postgresql://x@127.0.0.1/db")), ClusterCoordination
    )


async def test_a_poller_rides_out_the_store_dropping_every_connection(
    upstream: Upstream, tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database restarting (or a proxy cutting connections) fails the poller's claims and reads
    for a moment: the poller backs off and carries on, and the server around it keeps running."""
    store = await PostgresTaskStore.open(postgres_url)
    async with running_instance(upstream, tmp_path, postgres_url) as instance:
        task_id = (await instance.service.submit(SUBMIT)).task_id
        # Another instance polls it, so this one reads the store.
        assert (await store.claim_polling(task_id, "other-instance", 3600)).held
        await store.close()
        waited: list[Any] = []

        async def wait() -> None:
            waited.append(await instance.service.wait(task_id, download=False))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(wait)
                async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
                    while "the task journal failed" not in caplog.text:
                        await admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                        await anyio.sleep(0.05)
                    await admin.execute("UPDATE task_polls SET lease_until = now() - interval '1 second'")

    assert waited[0].status == "finished"
    assert instance.status_requests >= 1


async def test_a_follower_claims_the_moment_a_dead_owners_lease_lapses(postgres_url: str) -> None:
    """Not at its next re-read (a minute away here): a dead owner is replaced without delay."""
    store = await PostgresTaskStore.open(postgres_url)
    follower = ClusterCoordination(store, store, lease_seconds=30, reread_seconds=60, owner="follower")
    assert (await store.claim_polling("task_1", "dead-instance", 0.3)).held
    with anyio.fail_after(10):
        first_claim = await follower.claim("task_1")
        news = await follower.wait_for_news("task_1")  # nothing is written: it ends at the lapse
        second_claim = await follower.claim("task_1")
    await store.close()

    assert (first_claim, news, second_claim) == (False, False, True)
