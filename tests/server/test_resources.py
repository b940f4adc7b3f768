"""The apimp:// resources: recent tasks, one task with its events, and the model catalog."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from apimp_video_mcp.catalog import VIDEO_MODEL_IDS
from tests.support import Upstream, structured

pytestmark = pytest.mark.anyio

SUBMIT = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a hot air balloon over hills"}}


@pytest.mark.each_era
async def test_the_resources_show_tasks_and_the_model_catalog(client: Client, upstream: Upstream) -> None:
    task_id = structured(await client.call_tool("submit_video", SUBMIT))["task_id"]
    upstream.simulator.finish_now(task_id)
    await client.call_tool("wait_for_video", {"task_id": task_id})

    listed = await client.list_resources()
    templates = await client.list_resource_templates()
    recent = json.loads((await client.read_resource("apimp://tasks")).contents[0].text)  # type: ignore[union-attr]
    one = json.loads((await client.read_resource(f"apimp://tasks/{task_id}")).contents[0].text)  # type: ignore[union-attr]
    catalog = json.loads((await client.read_resource("apimp://models")).contents[0].text)  # type: ignore[union-attr]

    assert {str(resource.uri) for resource in listed.resources} == {"apimp://tasks", "apimp://models"}
    assert [template.uri_template for template in templates.resource_templates] == ["apimp://tasks/{task_id}"]
    assert recent["tasks"][0]["task_id"] == task_id
    assert one["status"] == "finished"
    assert one["local_paths"]
    assert [event["status"] for event in one["events"]][-1] == "finished"
    models = {model["model_id"]: model for model in catalog["models"]}
    assert models["veo-3.1-generate-preview"]["supports_4k"] is True
    assert models["veo-3.0-generate-001"]["supports_4k"] is False
    assert set(models) == set(VIDEO_MODEL_IDS)
    assert "aspectRatio" in catalog["metadata_fields"]


async def test_reading_an_unknown_task_resource_is_an_error(client: Client) -> None:
    with pytest.raises(Exception, match="no task"):
        await client.read_resource("apimp://tasks/task_nope")
