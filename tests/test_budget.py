"""Daily and monthly budgets, summed from the journal: refusals before anything is sent, totals that last."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import period_starts
from apimp_video_mcp.server import build_server
from apimp_video_mcp.view.wiring import POLL_TOOL
from tests.support import Mode, Upstream, fast_settings, structured, text_of

pytestmark = pytest.mark.anyio

STANDARD = {"model": "veo-3.1-generate-preview", "input": {"prompt": "a harbour at dawn"}}  # 3.20 USD
FAST = {
    "model": "veo-3.1-fast-generate-preview",
    "input": {"prompt": "gulls", "duration": 6},
}  # 0.60 USD (720p)


def test_the_day_and_month_begin_at_midnight_in_the_configured_zone() -> None:
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)

    assert period_starts(now, ZoneInfo("UTC")) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    # 00:30 on 2 December in Paris: a new day there, in the same month.
    assert period_starts(now, ZoneInfo("Europe/Paris")) == (
        datetime(2026, 12, 1, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
    )


async def test_the_daily_budget_refuses_what_would_exceed_it_before_sending(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", budget_daily=4.0)
    async with Client(build_server(settings), mode=mode) as client:
        structured(await client.call_tool("submit_video", STANDARD))
        refused = await client.call_tool("submit_video", STANDARD)
        fits = structured(await client.call_tool("submit_video", FAST))

    assert refused.is_error
    message = text_of(refused)
    assert "would exceed the daily budget of 4.00 USD (APIMP_BUDGET_DAILY)" in message
    assert "about 3.20 USD is already spent, 0.80 USD remains" in message
    assert "Nothing was sent" in message
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 2  # the refused one never left
    assert fits["spending"]["today"] == pytest.approx(3.8)
    assert fits["spending"]["remaining_today"] == pytest.approx(0.2)


async def test_totals_add_up_across_a_restart_and_the_monthly_budget_holds(
    upstream: Upstream, tmp_path: Path, mode: Mode
) -> None:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", budget_monthly=6.5)
    async with Client(build_server(settings), mode=mode) as client:
        structured(await client.call_tool("submit_video", STANDARD))
        structured(await client.call_tool("submit_video", FAST))

    async with Client(build_server(settings), mode=mode) as client:  # a new process on the same journal
        listed = await client.call_tool("list_tasks", {})
        resource = json.loads((await client.read_resource("apimp://tasks")).contents[0].text)  # type: ignore[union-attr]
        refused = await client.call_tool("submit_video", STANDARD)

    spending = structured(listed)["spending"]
    assert spending["today"] == pytest.approx(3.8)
    assert spending["this_month"] == pytest.approx(3.8)
    assert spending["remaining_this_month"] == pytest.approx(2.7)
    assert sorted(task["estimated_cost"] for task in structured(listed)["tasks"]) == [0.6, 3.2]
    assert "Estimated spend today: about 3.80 USD" in text_of(listed)
    assert resource["spending"]["today"] == pytest.approx(3.8)
    assert refused.is_error
    assert "monthly budget of 6.50 USD" in text_of(refused)
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 2


async def test_the_player_shows_the_task_estimate_and_the_totals(settings: Settings, mode: Mode) -> None:
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    async with Client(build_server(settings), mode=mode, extensions=[apps]) as client:
        task_id = structured(await client.call_tool("submit_video", FAST))["task_id"]
        status = structured(await client.call_tool(POLL_TOOL, {"task_id": task_id}))

    assert status["estimated_cost"] == pytest.approx(0.6)
    assert status["cost_display"] == "about 0.60 USD"
    assert status["spending"]["today"] == pytest.approx(0.6)
