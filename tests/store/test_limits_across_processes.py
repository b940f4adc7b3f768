"""A budget holds across server processes: the installed console script twice, as two hosts would
launch it over stdio, on one journal (a shared SQLite file, or the cluster's PostgreSQL), each
taking simultaneous submit_video calls. A daily budget fits one video: exactly one reaches APIMP.

`test_limits_across_instances` holds the same with two services in one process, in rounds that
always let two through without the submit lock; here the processes run truly in parallel, as in
production, for one round (against the per-process locks of before, about half its runs let two
through).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.support import Upstream, structured, text_of
from tests.support.processes import console_script, server_environment

pytestmark = pytest.mark.anyio

SUBMITS_PER_PROCESS = 8
FAST = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "gulls", "duration": 6}}  # 0.60 USD


async def test_a_daily_budget_holds_across_server_processes(
    upstream: Upstream, tmp_path: Path, location: str
) -> None:
    environment = server_environment(upstream, tmp_path / "videos") | {
        "APIMP_JOURNAL": location,
        "APIMP_BUDGET_DAILY": "1.00",  # one fast clip fits, two do not
    }
    parameters = StdioServerParameters(command=console_script(), args=[], env=environment)
    outcomes: Counter[str] = Counter()

    async def submit(client: Client) -> None:
        result = await client.call_tool("submit_video", FAST)
        if not result.is_error:
            outcomes["sent"] += 1
        elif "would exceed the daily budget" in text_of(result):
            outcomes["over the budget"] += 1
        else:
            outcomes[text_of(result)] += 1

    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(90):
        async with (
            Client(stdio_client(parameters, errlog=errlog)) as first,
            Client(stdio_client(parameters, errlog=errlog)) as second,
        ):
            clients = (first, second)
            for client in clients:  # both servers up, their journals open
                structured(await client.call_tool("list_tasks", {}))
            async with anyio.create_task_group() as group:
                for index in range(SUBMITS_PER_PROCESS * len(clients)):
                    group.start_soon(submit, clients[index % len(clients)])
            spending: dict[str, Any] = structured(await second.call_tool("list_tasks", {}))["spending"]

    assert outcomes == {"sent": 1, "over the budget": 2 * SUBMITS_PER_PROCESS - 1}
    assert len(upstream.simulator.requests_to("/api/generate/submit")) == 1
    assert spending["today"] == pytest.approx(0.6)
