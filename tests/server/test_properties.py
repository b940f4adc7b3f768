"""Property-based tests: whatever a model sends to submit_video, the server answers sanely.

Generated arguments, valid and invalid, go through the SDK's in-memory Client to the simulator
on loopback. Properties: the server never answers with a protocol error or crashes; an invalid
input never reaches the upstream; a valid input reaches it as exactly the same body.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from apimp_video_mcp.catalog import MODEL_SPECS, VIDEO_MODEL_IDS, resolution_for_size
from tests.support import Upstream, text_of

pytestmark = pytest.mark.anyio

EXAMPLES = 60
# The fixtures (one client, one simulator) serve every example; each example starts by clearing
# what the simulator received.
SHARED_FIXTURES = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# What JSON can carry: a model's arguments arrive as JSON, which has no NaN or infinity.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
prompts = st.text(min_size=1, max_size=80).filter(str.strip)
urls = st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9]{1,10}\.png", fullmatch=True)


@st.composite
def valid_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments that satisfy the schema and every documented rule of the drawn model."""
    model = draw(st.sampled_from(VIDEO_MODEL_IDS))
    spec = MODEL_SPECS[model]
    body: dict[str, Any] = {"prompt": draw(prompts)}
    if draw(st.booleans()):
        body[draw(st.sampled_from(["duration", "seconds"]))] = draw(st.sampled_from(spec.durations_seconds))
    if spec.family == "veo" and draw(st.booleans()):
        size = f"{draw(st.integers(1, 5000))}x{draw(st.integers(1, 5000))}"
        if resolution_for_size(size) in spec.resolutions:
            body["size"] = size
    if draw(st.booleans()):
        body["image"] = draw(urls)
    metadata: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata["seed"] = draw(st.integers(0, 4_294_967_295))
    if draw(st.booleans()):
        metadata["negativePrompt"] = draw(st.text(max_size=30))
    if spec.family == "veo" and draw(st.booleans()):
        metadata["resolution"] = draw(st.sampled_from(spec.resolutions))
    if draw(st.booleans()):
        metadata["aspectRatio"] = draw(st.sampled_from(["16:9", "9:16"]))
    if draw(st.booleans()):
        metadata["generateAudio"] = draw(st.booleans())
    if draw(st.booleans()):
        metadata[draw(st.sampled_from(["callback_url", "vendorOption", "x"]))] = draw(json_values)
    if metadata:
        body["metadata"] = metadata
    return {"model": model, "input": body}


@st.composite
def schema_shaped_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments the schema accepts but a model's own rules may not: durations, sizes, 4k."""
    body: dict[str, Any] = {"prompt": draw(prompts)}
    if draw(st.booleans()):
        body["duration"] = draw(st.sampled_from([4, 6, 8, 12]))
    if draw(st.booleans()):
        body["size"] = draw(st.sampled_from(["1280x720", "720x1280", "1792x1024", "1920x1080", "3840x3840"]))
    if draw(st.booleans()):
        body["metadata"] = {"resolution": draw(st.sampled_from(["720p", "1080p", "4k"]))}
    return {"model": draw(st.sampled_from(VIDEO_MODEL_IDS)), "input": body}


@st.composite
def arbitrary_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """What a confused model might send: right or wrong names, any JSON values."""
    arguments: dict[str, Any] = {}
    if draw(st.booleans()):
        arguments["model"] = draw(st.sampled_from(VIDEO_MODEL_IDS) | json_values)
    if draw(st.booleans()):
        field_names = st.sampled_from(
            ["prompt", "size", "duration", "seconds", "image", "images", "metadata", "fps"]
        )
        arguments["input"] = draw(st.dictionaries(field_names, json_values, max_size=5) | json_values)
    if draw(st.booleans()):
        arguments[draw(st.text(max_size=8))] = draw(json_values)
    return arguments


@SHARED_FIXTURES
@given(arguments=valid_arguments())
async def test_a_valid_input_reaches_the_upstream_as_exactly_the_same_body(
    client: Client, upstream: Upstream, arguments: dict[str, Any]
) -> None:
    upstream.simulator.received.clear()

    result = await client.call_tool("submit_video", arguments)

    assert not result.is_error, text_of(result)
    [sent] = upstream.simulator.requests_to("/api/generate/submit")
    assert sent.json() == arguments


@SHARED_FIXTURES
@given(arguments=arbitrary_arguments() | schema_shaped_arguments())
async def test_any_input_gets_a_tool_answer_and_an_invalid_one_never_reaches_the_upstream(
    client: Client, upstream: Upstream, arguments: dict[str, Any]
) -> None:
    upstream.simulator.received.clear()

    result = await client.call_tool("submit_video", arguments)  # a protocol error would raise here

    submitted = upstream.simulator.requests_to("/api/generate/submit")
    if result.is_error:
        assert submitted == []
        assert text_of(result).startswith("Error executing tool submit_video: ")
        assert text_of(result) != "Error executing tool submit_video: ", "the reason must be given"
    else:
        [sent] = submitted
        assert sent.json() == arguments
