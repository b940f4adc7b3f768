"""The catalog: each model's documented limits and the size rule, as data."""

from __future__ import annotations

import pytest

from apimp_video_mcp.catalog import (
    MODEL_SPECS,
    VIDEO_MODEL_IDS,
    aspect_ratio_for_size,
    parse_size,
    resolution_for_size,
    spoken,
)
from apimp_video_mcp.models import _by_model


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


def test_every_model_has_a_spec() -> None:
    assert set(MODEL_SPECS) == set(VIDEO_MODEL_IDS)


def test_a_size_that_is_not_width_by_height_is_refused() -> None:
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("1280*720")


def test_a_limit_the_models_do_not_share_is_spoken_per_model() -> None:
    described = _by_model(lambda spec: spec.resolutions)

    assert all(model in described for model in MODEL_SPECS)
    assert spoken(("720p", "1080p", "4k")) in described
    assert spoken(("4k",)) == "4k"
