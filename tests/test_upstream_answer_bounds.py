"""What the upstream answers is bounded before it is stored or shown: a hostile status answer with
a megabyte of error text, a huge status word and thousands of files cannot bloat the journal."""

from __future__ import annotations

import sqlite3

import pytest
from mcp import Client

from apimp_video_mcp import defaults
from apimp_video_mcp.config import Settings
from tests.support import Upstream, structured

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a lantern festival"}}


async def test_a_bloated_status_answer_is_cut_before_it_is_journaled(
    client: Client, upstream: Upstream, settings: Settings
) -> None:
    task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
    files = [
        {"file_url": f"https://cdn.example.com/{number}.mp4", "file_type": "video"} for number in range(5_000)
    ]
    upstream.simulator.inject_fault(
        path_prefix="/api/generate/status",
        status=200,
        body={
            "code": 200,
            "data": {
                "task_id": task_id,
                "status": "failed" + "!" * 100_000,
                "error_message": "e" * 1_000_000,
                "files": files,
            },
        },
    )

    report = structured(await client.call_tool("get_status", {"task_id": task_id, "refresh": True}))

    assert len(report["error_message"]) <= defaults.UPSTREAM_TEXT_MAX_CHARS + 1  # the ellipsis
    assert len(report["upstream_status"]) <= defaults.UPSTREAM_TEXT_MAX_CHARS + 1
    assert len(report["video_urls"]) <= defaults.UPSTREAM_FILES_MAX
    with sqlite3.connect(settings.journal_path) as db:
        (stored,) = db.execute(
            "SELECT length(error_message) + length(upstream_status) + length(video_urls_json) FROM tasks"
        ).fetchone()
    assert stored < 20_000
