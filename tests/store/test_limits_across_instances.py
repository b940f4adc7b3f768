"""A limit is a limit across instances: two services on one journal, as two server processes of a
cluster (PostgreSQL) or two desktop hosts' servers (one SQLite file) would be, take simultaneous
submits of one principal, and only what its limit or its budget allows reaches APIMP.

Real parts only: the APIMP simulator on loopback, a store of its own for each service (its own
PostgreSQL pool, or its own SQLite connection), and the submits all fired at once at both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Limits, Principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ApimpError, JournalUnavailableError
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.store import task_store_for
from apimp_video_mcp.store.postgres import SUBMIT_LOCK_NAMESPACE, PostgresTaskStore
from tests.support import Upstream, fast_settings
from tests.support.services import running_service

pytestmark = pytest.mark.anyio

SUBMITS_PER_INSTANCE = 8
# Rounds of simultaneous submits, a principal of its own each: whether two checks overlap is up
# to the scheduler, and without a shared lock at least one round of several lets two through.
ROUNDS = 6
# 3.20 USD at the list prices (8 s, 720p, with sound).
STANDARD = SubmitRequest.model_validate(
    {"model": "veo-3.1-generate-preview", "input": {"prompt": "a harbour at dawn"}}
)
SUBMIT_PATH = "/api/generate/submit"


@asynccontextmanager
async def two_instances(settings: Settings, location: str) -> AsyncIterator[list[VideoService]]:
    """Two running services, each with its own store on the journal and its own HTTP client."""
    async with AsyncExitStack() as stack:
        services = []
        for _ in range(2):
            journal = task_store_for(location)
            stack.push_async_callback(journal.close)
            services.append(await stack.enter_async_context(running_service(settings, journal)))
        yield services


async def submit_everywhere_at_once(services: list[VideoService], principal: Principal) -> Counter[str]:
    """Fire every submit at once, alternating between the instances; what each one came to."""
    outcomes: Counter[str] = Counter()

    async def submit(service: VideoService) -> None:
        try:
            await service.submit(STANDARD, principal=principal)
        except ApimpError as refused:
            outcomes[type(refused).__name__] += 1
            print(f"{type(refused).__name__}: {refused}")  # shown when the test fails
        else:
            outcomes["sent"] += 1

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for index in range(SUBMITS_PER_INSTANCE * len(services)):
                group.start_soon(submit, services[index % len(services)])
    return outcomes


async def test_a_running_tasks_limit_holds_across_instances(
    upstream: Upstream, tmp_path: Path, location: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    teams = [Principal(f"key:team-{round_}", limits=Limits(max_running_tasks=1)) for round_ in range(ROUNDS)]

    async with two_instances(settings, location) as services:
        outcomes = [await submit_everywhere_at_once(services, team) for team in teams]
        listed = [len((await services[1].list_tasks(principal=team)).tasks) for team in teams]

    assert outcomes == [{"sent": 1, "LimitExceededError": 2 * SUBMITS_PER_INSTANCE - 1}] * ROUNDS
    assert len(upstream.simulator.requests_to(SUBMIT_PATH)) == ROUNDS
    assert listed == [1] * ROUNDS


async def test_a_daily_budget_holds_across_instances(
    upstream: Upstream, tmp_path: Path, location: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", budget_daily=4.0)  # one fits
    # Each principal has its own total under the budget: one round each.
    spenders = [LOCAL_PRINCIPAL, *(Principal(f"key:spender-{round_}") for round_ in range(1, ROUNDS))]

    async with two_instances(settings, location) as services:
        outcomes = [await submit_everywhere_at_once(services, spender) for spender in spenders]
        spent = [(await services[0].spending(spender)).today for spender in spenders]

    assert outcomes == [{"sent": 1, "OverBudgetError": 2 * SUBMITS_PER_INSTANCE - 1}] * ROUNDS
    assert len(upstream.simulator.requests_to(SUBMIT_PATH)) == ROUNDS
    assert spent == [pytest.approx(3.2)] * ROUNDS


class LockLosingStore(PostgresTaskStore):
    """The real store, whose submit lock's session is ended by the server right after a submit is
    written: as when the connection holding it drops in the middle of the step."""

    async def record_submission(self, model: str, request: dict[str, Any], **options: Any) -> str:
        entry_id = await super().record_submission(model, request, **options)
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = %s",
                (SUBMIT_LOCK_NAMESPACE,),
            )
        return entry_id


async def test_a_submit_whose_lock_was_lost_is_not_sent_nor_kept(
    upstream: Upstream, tmp_path: Path, postgres_url: str
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    team = Principal("key:team", limits=Limits(max_running_tasks=1))
    journal = LockLosingStore(postgres_url)
    try:
        async with running_service(settings, journal) as service:
            with pytest.raises(JournalUnavailableError) as lost:
                await service.submit(STANDARD, principal=team)
            listed = await service.list_tasks(principal=team)
    finally:
        await journal.close()

    assert "NOT submitted" in str(lost.value)
    assert upstream.simulator.requests_to(SUBMIT_PATH) == []
    assert listed.tasks == []  # the entry was dropped: it counts against no limit
