"""Principals at the service: each sees only its own tasks, saves into its own folder, uses its own
APIMP key when it has one, and is held to its limits before anything reaches APIMP.

The HTTP side (who a bearer token makes you) is tested in test_auth_*.py; here the principals
are given to the plain `VideoService`, over the real simulator on loopback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from pydantic import SecretStr

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Limits, Principal
from apimp_video_mcp.errors import LimitExceededError, UnknownTaskError
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from apimp_video_mcp.store import SqliteTaskStore
from tests.support import Upstream, fast_settings
from tests.support.services import running_service

pytestmark = pytest.mark.anyio

ALICE = Principal("key:alice")
BOB = Principal("key:bob")
REQUEST = SubmitRequest.model_validate(
    {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a lighthouse"}}
)


@pytest.fixture
async def service(upstream: Upstream, tmp_path: Path) -> AsyncIterator[VideoService]:
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    journal = SqliteTaskStore(settings.journal_path)
    async with running_service(settings, journal) as running:
        yield running
    await journal.close()


async def refusal(call: object) -> str:
    with pytest.raises(UnknownTaskError) as refused:
        await call  # type: ignore[misc]
    return str(refused.value)


async def test_another_principals_task_answers_exactly_like_one_that_does_not_exist(
    service: VideoService, upstream: Upstream
) -> None:
    task_id = (await service.submit(REQUEST, principal=ALICE)).task_id
    statuses_before = len(upstream.simulator.requests_to("/api/generate/status"))

    theirs = [
        await refusal(service.get_status(task_id, principal=BOB)),
        await refusal(service.wait(task_id, principal=BOB, timeout_seconds=1)),
    ]
    nobodys = [
        await refusal(service.get_status("task_nobody", principal=BOB)),
        await refusal(service.wait("task_nobody", principal=BOB, timeout_seconds=1)),
    ]

    assert [message.replace(task_id, "ID") for message in theirs] == [
        message.replace("task_nobody", "ID") for message in nobodys
    ]
    assert (await service.list_tasks(principal=BOB)).tasks == []
    assert len(upstream.simulator.requests_to("/api/generate/status")) == statuses_before, "nothing asked"
    # The owner still has it all.
    assert [entry.task_id for entry in (await service.list_tasks(principal=ALICE)).tasks] == [task_id]
    assert (await service.get_status(task_id, principal=ALICE)).task_id == task_id


async def test_the_local_principal_cannot_reach_a_remote_principals_task_either(
    service: VideoService,
) -> None:
    task_id = (await service.submit(REQUEST, principal=ALICE)).task_id

    message = await refusal(service.get_status(task_id, principal=LOCAL_PRINCIPAL))

    assert "no task" in message
    assert (await service.list_tasks()).tasks == []


async def test_the_local_principal_still_adopts_a_task_submitted_elsewhere_with_its_key(
    service: VideoService, upstream: Upstream
) -> None:
    async with httpx2.AsyncClient() as other:
        answer = await other.post(
            f"{upstream.base_url}/api/generate/submit",
            json={"model": "veo-3.0-fast-generate-001", "input": {"prompt": "x"}},
            headers={"authorization": f"Bearer {SIMULATOR_API_KEY}"},
        )
    elsewhere = answer.json()["data"]["task_id"]

    report = await service.get_status(elsewhere)

    assert report.task_id == elsewhere
    assert [entry.task_id for entry in (await service.list_tasks()).tasks] == [elsewhere]
    with pytest.raises(UnknownTaskError):  # and now it is the local user's, nobody else's
        await service.get_status(elsewhere, principal=ALICE)


async def test_each_principals_videos_are_saved_in_its_own_folder(service: VideoService) -> None:
    mine = (await service.submit(REQUEST, principal=ALICE)).task_id
    local = (await service.submit(REQUEST)).task_id

    with anyio.fail_after(10):
        alices = await service.wait(mine, principal=ALICE)
        locals_ = await service.wait(local)

    base = service.settings.download_dir
    assert Path(alices.saved_videos[0].path).parent == base / "key-alice"
    assert Path(locals_.saved_videos[0].path).parent == base


async def test_a_principal_with_its_own_apimp_key_uses_it_for_every_request_and_only_then(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.api_keys = frozenset({SIMULATOR_API_KEY, "sk-carols-own"})
    carol = Principal("byok:carol", api_key=SecretStr("sk-carols-own"))
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    journal = SqliteTaskStore(settings.journal_path)
    async with running_service(settings, journal) as service:
        carols = (await service.submit(REQUEST, principal=carol)).task_id
        with anyio.fail_after(10):
            await service.wait(carols, principal=carol)
        locals_ = (await service.submit(REQUEST)).task_id
        await service.get_status(locals_)
    await journal.close()

    def status_keys(task_id: str) -> set[str]:
        return {
            r.headers["authorization"]
            for r in upstream.simulator.requests_to(f"/api/generate/status/{task_id}")
        }

    assert upstream.simulator.tasks[carols].api_key == "sk-carols-own"  # the key its submit carried
    assert status_keys(carols) == {"Bearer sk-carols-own"}
    assert upstream.simulator.tasks[locals_].api_key == SIMULATOR_API_KEY
    assert status_keys(locals_) == {f"Bearer {SIMULATOR_API_KEY}"}


async def test_the_submits_per_hour_limit_refuses_before_anything_is_sent(
    service: VideoService, upstream: Upstream
) -> None:
    limited = Principal("key:limited", limits=Limits(max_submits_per_hour=2))
    for _ in range(2):
        await service.submit(REQUEST, principal=limited)

    with pytest.raises(LimitExceededError) as refused:
        await service.submit(REQUEST, principal=limited)

    message = str(refused.value)
    assert "limit of 2 submits per hour" in message
    assert "nothing was submitted or charged" in message
    assert "UTC (in 60 min)" in message
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 2
    assert len((await service.list_tasks(principal=limited)).tasks) == 2
    await service.submit(REQUEST, principal=ALICE)  # nobody else is held to it


async def test_the_running_tasks_limit_frees_up_when_a_task_ends(
    service: VideoService, upstream: Upstream
) -> None:
    limited = Principal("key:limited", limits=Limits(max_running_tasks=1))
    first = (await service.submit(REQUEST, principal=limited)).task_id

    with pytest.raises(LimitExceededError) as refused:
        await service.submit(REQUEST, principal=limited)
    assert "limit of 1 running tasks" in str(refused.value)
    assert first in str(refused.value), "it names the task to wait for"
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1

    with anyio.fail_after(10):
        await service.wait(first, principal=limited, download=False)
    await service.submit(REQUEST, principal=limited)


async def test_parallel_submits_cannot_overrun_a_limit(service: VideoService, upstream: Upstream) -> None:
    limited = Principal("key:limited", limits=Limits(max_running_tasks=2))
    outcomes: list[str] = []

    async def submit() -> None:
        try:
            await service.submit(REQUEST, principal=limited)
            outcomes.append("accepted")
        except LimitExceededError:
            outcomes.append("refused")

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(submit)

    assert sorted(outcomes) == ["accepted", "accepted", "refused", "refused", "refused"]
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 2


async def test_a_journal_from_before_principals_is_upgraded_and_its_tasks_stay_local(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:  # the schema as it was before principals
        old.execute(
            "CREATE TABLE tasks (entry_id TEXT PRIMARY KEY, task_id TEXT UNIQUE, model TEXT,"
            " request_json TEXT, submit_state TEXT NOT NULL, status TEXT NOT NULL, upstream_status TEXT,"
            " progress INTEGER,"
            " video_urls_json TEXT NOT NULL DEFAULT '[]', local_paths_json TEXT NOT NULL DEFAULT '[]',"
            " error_message TEXT, created_time TEXT, finished_time TEXT, recorded_at TEXT NOT NULL,"
            " updated_at TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO tasks (entry_id, task_id, submit_state, status, recorded_at, updated_at)"
            " VALUES ('entry_1', 'task_old', 'accepted', 'finished', '2026-01-01', '2026-01-01')"
        )
    old.close()

    journal = await SqliteTaskStore.open(path)
    try:
        mine = await journal.get("task_old", principal=LOCAL_PRINCIPAL.id)
        theirs = await journal.get("task_old", principal=ALICE.id)
        owner = await journal.owner("task_old")
    finally:
        await journal.close()
    again = await SqliteTaskStore.open(path)  # opening an upgraded journal changes nothing
    await again.close()

    assert mine is not None
    assert mine.principal == "local"
    assert theirs is None
    assert owner == "local"


def test_a_principals_folder_is_one_safe_name() -> None:
    assert Principal("key:../../etc").folder == "key-..-..-etc"
    assert Principal("oauth:a/b").folder == "oauth-a-b"
    assert Principal("..").folder == "principal"
    assert LOCAL_PRINCIPAL.download_dir(Path("/v")) == Path("/v")
    assert Principal("key:x").download_dir(Path("/v")) == Path("/v/key-x")
