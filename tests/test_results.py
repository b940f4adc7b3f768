"""What the service reports: the format a request yields, and where each of its values came from."""

from __future__ import annotations

from typing import Any

from apimp_video_mcp.models import SubmitRequest, effective_format


def request(model: str = "veo-3.1-generate-preview", **input_: Any) -> SubmitRequest:
    return SubmitRequest.model_validate({"model": model, "input": {"prompt": "a cat", **input_}})


def test_metadata_wins_and_sources_are_reported() -> None:
    fmt = effective_format(
        request(size="720x1280", duration=4, metadata={"durationSeconds": 6, "resolution": "1080p"})
    )

    assert (fmt.aspect_ratio, fmt.aspect_ratio_source) == ("9:16", "size")
    assert (fmt.resolution, fmt.resolution_source) == ("1080p", "metadata")
    assert (fmt.duration_seconds, fmt.duration_source) == (6, "metadata")


def test_without_size_the_model_defaults_are_reported() -> None:
    fmt = effective_format(request())

    assert fmt.duration_seconds == 8
    assert fmt.duration_source == "model default"
    assert fmt.aspect_ratio is None
    assert "default" in fmt.notes[0]
