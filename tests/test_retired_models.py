"""Retired models: gone from the schema, and a request naming one is told why and what to use instead."""

from __future__ import annotations

import pytest
from mcp import Client

from apimp_video_mcp.catalog import RETIRED_MODELS, VIDEO_MODEL_IDS
from tests.support import Upstream, text_of

pytestmark = pytest.mark.anyio


async def test_the_published_schema_offers_only_available_models(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    offered = tools["submit_video"].input_schema["properties"]["model"]["enum"]

    assert offered == list(VIDEO_MODEL_IDS)
    assert not set(offered) & set(RETIRED_MODELS)


@pytest.mark.parametrize("model", ["sora-2", "sora-2-pro"])
async def test_a_retired_model_is_refused_with_when_by_whom_and_the_alternatives(
    client: Client, upstream: Upstream, model: str
) -> None:
    result = await client.call_tool("submit_video", {"model": model, "input": {"prompt": "a paper boat"}})

    assert result.is_error
    message = text_of(result)
    assert f"{model} was retired on 2026-09-24" in message
    assert "OpenAI switched off the Sora 2 models and its Videos API" in message
    for available in VIDEO_MODEL_IDS:
        assert available in message
    assert "model" in message  # the field the model must change
    assert upstream.simulator.received == []


async def test_an_unknown_model_still_gets_the_list_of_choices(client: Client) -> None:
    result = await client.call_tool("submit_video", {"model": "veo-9", "input": {"prompt": "x"}})

    assert result.is_error
    assert "retired" not in text_of(result)
    assert "veo-3.1-generate-preview" in text_of(result)
