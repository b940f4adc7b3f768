"""The task journal: every task is recorded before submit_video returns, and survives anything.

The store's own contract, on both backends, is tested in `tests/store/`.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
from functools import partial
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.models import SubmitRequest
from apimp_video_mcp.server import build_server
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.simulator import SIMULATOR_API_KEY
from apimp_video_mcp.store import SqliteTaskStore
from apimp_video_mcp.upstream.client import ApimpClient
from tests.support import Upstream, fast_settings, structured, text_of
from tests.support.processes import http_server_process

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a hot air balloon over hills"}}


async def test_submit_video_records_the_task_before_it_returns(client: Client) -> None:
    task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]

    listed = structured(await client.call_tool("list_tasks", {}))

    [entry] = listed["tasks"]
    whole = json.loads((await client.read_resource(f"apimp://tasks/{task_id}")).contents[0].text)  # type: ignore[union-attr]
    assert entry["task_id"] == task_id
    assert entry["prompt_preview"] == SUBMIT["input"]["prompt"]  # type: ignore[index]
    assert whole["request"] == SUBMIT
    assert entry["model"] == SUBMIT["model"]
    assert task_id in text_of(await client.call_tool("list_tasks", {"status": "not_started"}))


async def test_an_ended_task_is_answered_from_the_journal_unless_refreshed(
    client: Client, upstream: Upstream
) -> None:
    task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
    upstream.simulator.finish_now(task_id)
    structured(await client.call_tool("wait_for_video", {"task_id": task_id}))
    queries = len(upstream.simulator.requests_to("/api/generate/status"))

    cached = structured(await client.call_tool("get_status", {"task_id": task_id}))
    after_cache = len(upstream.simulator.requests_to("/api/generate/status"))
    fresh = structured(await client.call_tool("get_status", {"task_id": task_id, "refresh": True}))

    assert cached["source"] == "journal"
    assert cached["status"] == "finished"
    assert cached["video_urls"] == fresh["video_urls"]
    assert after_cache == queries
    assert fresh["source"] == "apimp"
    assert len(upstream.simulator.requests_to("/api/generate/status")) == queries + 1


async def test_a_submit_with_an_unknown_outcome_is_kept_and_the_model_is_told(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/submit", status=502)
    async with Client(build_server(fast_settings(upstream.base_url, tmp_path / "videos"))) as client:
        failed = await client.call_tool("submit_video", SUBMIT)
        listed = structured(await client.call_tool("list_tasks", {"status": "submit_outcome_unknown"}))
        [entry] = listed["tasks"]
        lookup = await client.call_tool("get_status", {"task_id": entry["entry_id"]})
        [contents] = (await client.read_resource(f"apimp://tasks/{entry['entry_id']}")).contents
        whole = json.loads(contents.text)  # type: ignore[union-attr]

    assert failed.is_error
    assert "may have been created" in text_of(failed)
    assert entry["entry_id"] in text_of(failed)
    assert whole["request"] == SUBMIT
    assert entry["task_id"] is None
    assert lookup.is_error
    assert "unknown" in text_of(lookup)
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1


async def test_a_refused_submit_leaves_no_entry(client: Client, upstream: Upstream) -> None:
    upstream.simulator.inject_fault(path_prefix="/api/generate/submit", status=400)

    assert (await client.call_tool("submit_video", SUBMIT)).is_error
    assert structured(await client.call_tool("list_tasks", {}))["tasks"] == []


async def test_a_task_submitted_elsewhere_is_journaled_when_seen(client: Client, upstream: Upstream) -> None:
    async with httpx2.AsyncClient(base_url=upstream.base_url) as http:
        response = await http.post(
            "/api/generate/submit", json=SUBMIT, headers={"authorization": f"Bearer {SIMULATOR_API_KEY}"}
        )
    task_id = response.json()["data"]["task_id"]

    structured(await client.call_tool("get_status", {"task_id": task_id}))

    [entry] = structured(await client.call_tool("list_tasks", {}))["tasks"]
    assert entry["task_id"] == task_id
    assert entry["model"] is None


async def test_the_journal_file_never_contains_the_api_key(upstream: Upstream, tmp_path: Path) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos")
    async with Client(build_server(settings)) as client:
        task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
        await client.call_tool("wait_for_video", {"task_id": task_id})

    raw = b"".join(path.read_bytes() for path in tmp_path.glob("videos-journal.sqlite3*"))
    assert task_id.encode() in raw, "the test must read the file the journal actually wrote"
    assert SIMULATOR_API_KEY.encode() not in raw


async def test_hundreds_of_concurrent_waits_keep_the_journal_consistent_and_off_the_event_loop(
    upstream: Upstream, tmp_path: Path
) -> None:
    tasks = 200
    settings = fast_settings(
        upstream.base_url,
        tmp_path / "videos",
        poll_min_interval_seconds=0.1,
        poll_max_interval_seconds=0.2,
        progress_interval_seconds=1.0,  # 200 waiters beating every 20 ms would only measure the CPU
        wait_timeout_seconds=60.0,  # every wait must end finished, even on a loaded machine
    )
    journal = await SqliteTaskStore.open(settings.journal_path)
    statement_threads: set[int] = set()
    assert journal._connection is not None
    journal._connection.set_trace_callback(lambda _: statement_threads.add(threading.get_ident()))
    loop_thread = threading.get_ident()
    async with httpx2.AsyncClient(base_url=upstream.base_url) as http:
        service = VideoService(settings, ApimpClient(lambda: http, settings.require_api_key), journal)
        request = SubmitRequest.model_validate(SUBMIT)
        task_ids = [(await service.submit(request)).task_id for _ in range(tasks)]
        with anyio.fail_after(60):
            async with service.running(), anyio.create_task_group() as group:
                for task_id in task_ids:
                    group.start_soon(partial(service.wait, task_id, download=False))
        entries = await journal.recent(principal=LOCAL, limit=tasks + 1)
        events = [await journal.get(task_id, principal=LOCAL, with_events=True) for task_id in task_ids]
    await journal.close()

    assert len(entries) == tasks
    assert {entry.status for entry in entries} == {"finished"}
    assert {entry.task_id for entry in entries} == set(task_ids)
    for entry in events:
        assert entry is not None
        progress = [event.progress or 0 for event in entry.events]
        assert progress == sorted(progress)
        assert entry.events[-1].status == "finished"
    assert statement_threads, "the trace must have seen the journal's statements"
    assert loop_thread not in statement_threads
    with sqlite3.connect(settings.journal_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_wait_killed_with_sigkill_resumes_after_a_restart(upstream: Upstream, tmp_path: Path) -> None:
    upstream.simulator.task_duration_seconds = 3.0
    download_dir = tmp_path / "videos"
    task_ids: list[str] = []
    killed = anyio.Event()
    async with http_server_process(upstream, download_dir) as server:
        progressed = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progressed.set()

        async def submit_and_wait() -> None:
            try:
                async with Client(server.url) as client:
                    task_ids.append(structured(await client.call_tool("submit_video", SUBMIT))["task_id"])
                    await client.call_tool(
                        "wait_for_video", {"task_id": task_ids[0]}, progress_callback=on_progress
                    )
            except Exception:
                if not killed.is_set():
                    raise  # only the kill may end this call
            await anyio.sleep_forever()  # the client may notice the death at once, or never: cancelled below

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(submit_and_wait)
                await progressed.wait()
                killed.set()
                server.process.send_signal(signal.SIGKILL)
                await server.process.wait()
                group.cancel_scope.cancel()
    [task_id] = task_ids
    assert upstream.simulator.tasks[task_id].finished_at(1.0) > upstream.simulator.clock(), "killed mid-wait"

    async with http_server_process(upstream, download_dir) as server, Client(server.url) as client:
        [entry] = structured(await client.call_tool("list_tasks", {}))["tasks"]
        with anyio.fail_after(20):
            waited = structured(await client.call_tool("wait_for_video", {"task_id": task_id}))

    assert entry["task_id"] == task_id
    assert entry["status"] in ("not_started", "running")
    assert waited["status"] == "finished"
    assert waited["saved_videos"]
