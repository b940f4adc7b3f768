"""The published input schemas: no references and no nulls, every documented field and enum."""

from __future__ import annotations

import json

import pytest

from apimp_video_mcp.catalog import VIDEO_MODEL_IDS
from apimp_video_mcp.server import build_tools
from apimp_video_mcp.server.schema import publishable_input_schema


def test_published_input_schemas_have_no_references_and_no_nulls() -> None:
    for tool in build_tools():
        text = json.dumps(tool.parameters)
        assert "$ref" not in text
        assert "$defs" not in text
        assert '"null"' not in text


def test_the_submit_schema_shows_every_documented_field_and_enum() -> None:
    [submit] = [tool for tool in build_tools() if tool.name == "submit_video"]
    properties = submit.parameters["properties"]
    input_ = properties["input"]
    metadata = input_["properties"]["metadata"]

    assert properties["model"]["enum"] == list(VIDEO_MODEL_IDS)
    assert input_["required"] == ["prompt"]
    assert input_["additionalProperties"] is False
    assert input_["properties"]["images"]["maxItems"] == 1
    assert metadata["additionalProperties"] is True
    assert metadata["properties"]["resolution"]["enum"] == ["720p", "1080p", "4k"]
    assert metadata["properties"]["aspectRatio"]["enum"] == ["16:9", "9:16"]
    assert metadata["properties"]["seed"]["type"] == "integer"
    for field in (*input_["properties"].values(), *metadata["properties"].values()):
        assert field["description"]


def test_inlining_keeps_the_property_description_and_refuses_cycles() -> None:
    schema = {
        "properties": {"a": {"$ref": "#/$defs/A", "description": "outer"}},
        "$defs": {"A": {"type": "object", "description": "inner", "properties": {"x": {"type": "integer"}}}},
    }
    assert publishable_input_schema(schema) == {
        "properties": {
            "a": {"type": "object", "description": "outer", "properties": {"x": {"type": "integer"}}}
        }
    }

    cyclic = {
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"properties": {"b": {"$ref": "#/$defs/A"}}}},
    }
    with pytest.raises(ValueError, match="recursive"):
        publishable_input_schema(cyclic)
