"""Request models, the documented size rule, status parsing and the published schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from apimp_video_mcp.catalog import MODEL_SPECS, VIDEO_MODEL_IDS, aspect_ratio_for_size, resolution_for_size
from apimp_video_mcp.errors import InvalidRequestError
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot, VeoMetadata
from apimp_video_mcp.results import EffectiveFormat
from apimp_video_mcp.server import build_tools
from apimp_video_mcp.server.schema import publishable_input_schema


def request(model: str = "veo-3.1-generate-preview", **input_: Any) -> SubmitRequest:
    return SubmitRequest.model_validate({"model": model, "input": {"prompt": "a cat", **input_}})


@pytest.mark.parametrize(
    ("size", "aspect", "resolution"),
    [
        ("1280x720", "16:9", "720p"),
        ("720x1280", "9:16", "720p"),
        ("1920x1080", "16:9", "720p"),  # the documented rule reads the short side
        ("1920x1920", "16:9", "1080p"),
        ("2160x3840", "9:16", "1080p"),
        ("3840x3840", "16:9", "4k"),
    ],
)
def test_the_documented_size_rule(size: str, aspect: str, resolution: str) -> None:
    assert aspect_ratio_for_size(size) == aspect
    assert resolution_for_size(size) == resolution


def test_the_body_is_exactly_what_was_given_with_extra_metadata_passed_through() -> None:
    given = {
        "model": "veo-3.1-generate-preview",
        "input": {
            "prompt": "a cat",
            "seconds": 8,
            "metadata": {
                "durationSeconds": 6,
                "personGeneration": "dont_allow",
                "callback_url": "https://x/cb",
            },
        },
    }

    assert SubmitRequest.model_validate(given).to_body() == given


def test_metadata_fields_use_the_upstream_names() -> None:
    names = set(VeoMetadata.model_json_schema(by_alias=True)["properties"])

    assert names == {
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "negativePrompt",
        "personGeneration",
        "storageUri",
        "compressionQuality",
        "resizeMode",
        "seed",
        "generateAudio",
    }


def test_metadata_wins_and_sources_are_reported() -> None:
    fmt = EffectiveFormat.for_request(
        request(size="720x1280", duration=4, metadata={"durationSeconds": 6, "resolution": "1080p"})
    )

    assert (fmt.aspect_ratio, fmt.aspect_ratio_source) == ("9:16", "size")
    assert (fmt.resolution, fmt.resolution_source) == ("1080p", "metadata")
    assert (fmt.duration_seconds, fmt.duration_source) == (6, "metadata")


def test_without_size_the_model_defaults_are_reported() -> None:
    fmt = EffectiveFormat.for_request(request())

    assert fmt.duration_seconds == 8
    assert fmt.duration_source == "model default"
    assert fmt.aspect_ratio is None
    assert "default" in fmt.notes[0]


@pytest.mark.parametrize("model", ["veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"])
def test_4k_is_allowed_on_veo_3_1(model: str) -> None:
    request(model, metadata={"resolution": "4k"}).check_documented_rules()
    request(model, size="3840x3840").check_documented_rules()


def test_an_explicit_resolution_overrides_what_the_size_would_give() -> None:
    request(
        "veo-3.0-generate-001", size="3840x3840", metadata={"resolution": "1080p"}
    ).check_documented_rules()


def test_4k_on_veo_3_0_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        request("veo-3.0-generate-001", metadata={"resolution": "4k"}).check_documented_rules()

    assert caught.value.field == "input.metadata.resolution"


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_a_blank_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(ValidationError, match=r"blank|at least 1"):
        SubmitRequest.model_validate({"model": "veo-3.1-generate-preview", "input": {"prompt": prompt}})


def test_every_model_has_a_spec() -> None:
    assert set(MODEL_SPECS) == set(VIDEO_MODEL_IDS)


def test_status_parsing_tells_videos_apart_by_url() -> None:
    snapshot = TaskSnapshot.from_wire(
        {
            "task_id": "task_1",
            "status": "finished",
            "progress": "100",
            "files": [
                {"file_url": "https://cdn/x/video.MP4?sig=1", "file_type": "image"},
                {"file_url": "https://cdn/x/thumb.jpg", "file_type": "image"},
                {"file_url": "https://cdn/x/opaque-id", "file_type": "image"},
                "not an object",
            ],
        }
    )

    assert snapshot.video_urls == ["https://cdn/x/video.MP4?sig=1", "https://cdn/x/opaque-id"]
    assert snapshot.other_file_urls == ["https://cdn/x/thumb.jpg"]
    assert snapshot.progress == 100


def test_an_unknown_status_counts_as_running_and_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    snapshot = TaskSnapshot.from_wire({"task_id": "task_1", "status": "moderating", "progress": None})

    assert snapshot.status == "running"
    assert snapshot.upstream_status == "moderating"
    assert not snapshot.is_terminal
    assert "moderating" in caplog.text


@pytest.mark.parametrize(
    ("raw", "parsed"), [(42, 42), (42.6, 43), ("7", 7), (150, 100), (-3, 0), ("x", None)]
)
def test_progress_is_read_tolerantly(raw: object, parsed: int | None) -> None:
    assert TaskSnapshot.from_wire({"status": "running", "progress": raw}, task_id="t").progress == parsed


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
