"""Request models: each model's documented rules, the exact upstream body, and status parsing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from apimp_video_mcp.catalog import MODEL_SPECS, size_rule_text, spoken
from apimp_video_mcp.errors import InvalidRequestError
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot, VeoMetadata, VideoInput


def request(model: str = "veo-3.1-generate-preview", **input_: Any) -> SubmitRequest:
    return SubmitRequest.model_validate({"model": model, "input": {"prompt": "a cat", **input_}})


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


def test_the_limits_the_schema_describes_are_the_catalogs() -> None:
    resolution_help = VeoMetadata.model_fields["resolution"].description or ""
    size_help = VideoInput.model_fields["size"].description or ""
    duration_help = VideoInput.model_fields["duration"].description or ""

    for model, spec in MODEL_SPECS.items():
        assert (model in resolution_help) == ("4k" in spec.resolutions), model
        assert spoken(spec.durations_seconds) in duration_help
    assert size_rule_text() in size_help
