"""The simulator's own copy of the APIMP contract agrees with the catalog and the request model.

The simulator reads APIMP's docs independently of the client (that is what makes it a fair
opponent), so the two can drift apart silently: a model added to one and not the other, an input
key, the size rule. These tests tie them together without merging them.
"""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from apimp_video_mcp.catalog import MODEL_SPECS, VIDEO_MODEL_IDS, Resolution, resolution_for_size
from apimp_video_mcp.models import VideoInput
from apimp_video_mcp.simulator.app import INPUT_KEYS, MODELS, documented_resolution, validate_submission

# Every side length around the rule's thresholds, and a few ordinary ones.
SIDES = (1, 720, 1079, 1080, 1280, 1919, 1920, 1921, 2160, 3839, 3840, 3841, 4096)


def test_the_simulator_serves_exactly_the_catalogs_models() -> None:
    assert set(MODELS) == set(VIDEO_MODEL_IDS)


def test_the_simulator_accepts_exactly_the_request_models_input_keys() -> None:
    assert set(VideoInput.model_fields) == INPUT_KEYS


def test_the_simulator_reads_the_size_rule_as_the_catalog_does() -> None:
    disagreements = [
        (width, height)
        for width, height in itertools.product(SIDES, SIDES)
        if documented_resolution(width, height) != resolution_for_size(f"{width}x{height}")
    ]

    assert disagreements == []


@pytest.mark.parametrize(
    ("model", "resolution"), list(itertools.product(VIDEO_MODEL_IDS, get_args(Resolution)))
)
def test_the_simulator_renders_the_resolutions_the_catalog_lists(model: str, resolution: str) -> None:
    body = {
        "model": model,
        "input": {"prompt": "a kite over the dunes", "metadata": {"resolution": resolution}},
    }

    accepted = validate_submission(body) is None

    assert accepted == (resolution in MODEL_SPECS[model].resolutions)  # type: ignore[index]
