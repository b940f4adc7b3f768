"""Tests of the APIMP simulator against the documented contract, in process and with a fake clock."""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator
from datetime import datetime
from importlib.resources import files
from typing import Any

import anyio
import httpx2
import pytest

from apimp_video_mcp.simulator import (
    SIMULATOR_API_KEY,
    ReceivedRequest,
    Simulator,
    sample_video,
    veo_like_duration,
)
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
SUBMIT = "/api/generate/submit"
STATUS = "/api/generate/status/"
FILE_URL = re.compile(r"^http://sim/files/(task_[0-9a-f]+)\.mp4\?token=[0-9a-f]+$")
ISO_NO_TZ = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(task_duration_seconds=10.0, clock=clock, seed=1234)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=sim.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sim") as c:
        yield c


def video(
    prompt: str = "a red fox running through snow", model: str = "veo-3.1-fast-generate-preview"
) -> Any:
    return {"model": model, "input": {"prompt": prompt}}


async def submit(client: httpx2.AsyncClient, body: Any = None, headers: dict[str, str] = AUTH) -> str:
    response = await client.post(SUBMIT, json=video() if body is None else body, headers=headers)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["task_id"]
    return task_id


async def status(client: httpx2.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(STATUS + task_id, headers=AUTH)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def envelope(code: int, message: str, kind: str) -> dict[str, Any]:
    return {"code": code, "error": {"message": message, "type": kind}}


async def test_submit_answers_the_documented_envelope(client: httpx2.AsyncClient, sim: Simulator) -> None:
    response = await client.post(SUBMIT, json=video(), headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    assert set(body["data"]) == {"task_id", "status", "created_time", "error_message"}
    data = body["data"]
    assert re.fullmatch(r"task_[0-9a-f]{32}", data["task_id"])
    assert data["status"] == "not_started"
    assert data["error_message"] is None
    assert ISO_NO_TZ.match(data["created_time"])
    assert datetime.fromisoformat(data["created_time"]).tzinfo is None
    task = sim.tasks[data["task_id"]]
    assert (task.model, task.body, task.api_key, task.duration) == (
        "veo-3.1-fast-generate-preview",
        video(),
        SIMULATOR_API_KEY,
        10.0,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-wrong"},
        {"Authorization": SIMULATOR_API_KEY},
        {"Authorization": "Basic x"},
    ],
)
async def test_a_missing_or_wrong_key_is_401(client: httpx2.AsyncClient, headers: dict[str, str]) -> None:
    task_id = await submit(client)
    for response in (
        await client.post(SUBMIT, json=video(), headers=headers),
        await client.get(STATUS + task_id, headers=headers),
    ):
        assert response.status_code == 401
        assert response.json() == envelope(401, "Invalid API key", "authentication_error")


async def test_a_task_of_another_key_is_403(clock: FakeClock) -> None:
    sim = Simulator(api_keys=("sk-one", "sk-two"), clock=clock)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim.app), base_url="http://sim") as c:
        task_id = await submit(c, headers={"Authorization": "Bearer sk-one"})
        mine = await c.get(STATUS + task_id, headers={"Authorization": "Bearer sk-one"})
        theirs = await c.get(STATUS + task_id, headers={"Authorization": "Bearer sk-two"})
    assert mine.status_code == 200
    assert theirs.status_code == 403
    assert theirs.json()["error"]["type"] == "permission_error"


def with_input(**fields: Any) -> dict[str, Any]:
    return {"model": "veo-3.0-generate-001", "input": {"prompt": "a lighthouse at dusk", **fields}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body must be a JSON object"),
        (b"[1, 2]", "request body must be a JSON object"),
        ({"input": {"prompt": "x"}}, "model is required"),
        ({"model": "veo-2", "input": {"prompt": "x"}}, 'model "veo-2" is not supported'),
        ({"model": "veo-3.1-generate-preview"}, "input is required"),
        ({"model": "veo-3.1-generate-preview", "input": "a cat"}, "input must be an object"),
        ({"model": "veo-3.1-generate-preview", "input": {}}, "input.prompt is required"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "   "}}, "input.prompt is required"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": 7}}, "input.prompt must be a string"),
        (with_input(aspect_ratio="16:9"), "input.aspect_ratio is not allowed"),
        (with_input(size="1280*720"), "input.size must be 'WxH' with positive integers"),
        (with_input(size="0x720"), "input.size must be 'WxH' with positive integers"),
        (with_input(size=1280), "input.size must be 'WxH' with positive integers"),
        (with_input(image=["https://x/a.png"]), "input.image must be a string"),
        (with_input(images="https://x/a.png"), "input.images must be a list"),
        (with_input(images=["https://x/a.png", "https://x/b.png"]), "input.images accepts at most 1 item"),
        (with_input(metadata=["4k"]), "input.metadata must be an object"),
        (with_input(metadata={"resolution": "4k"}), "input.metadata.resolution 4k is not supported"),
        (with_input(size="3840x4096"), "input.size 3840x4096 maps to resolution 4k"),
    ],
)
async def test_invalid_submissions_are_400_naming_the_field(
    client: httpx2.AsyncClient, sim: Simulator, body: Any, message: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(SUBMIT, content=content, headers=AUTH)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(message)
    assert sim.tasks == {}


@pytest.mark.parametrize(
    "body",
    [
        with_input(size="3840x2160"),  # short side 2160: the documented rule says 1080p
        with_input(metadata={"resolution": "1080p", "seed": 7, "anything": [1]}, duration=8, images=["u"]),
        {"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "metadata": {"resolution": "4k"}}},
        {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "x", "size": "720x1280", "seconds": "8"}},
    ],
)
async def test_valid_submissions_are_accepted(client: httpx2.AsyncClient, body: Any) -> None:
    await submit(client, body)


async def test_status_goes_not_started_then_running_then_finished(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    task_id = await submit(client)
    seen: list[tuple[str, int]] = []
    for _ in range(21):
        data = await status(client, task_id)
        seen.append((data["status"], data["progress"]))
        clock.advance(0.5)

    statuses = [s for s, _ in seen]
    assert statuses[0] == "not_started"
    assert statuses[-1] == "finished"
    assert statuses == sorted(statuses, key=["not_started", "running", "finished"].index)
    running = [p for s, p in seen if s == "running"]
    assert len(running) >= 10
    assert running == sorted(running)
    assert all(0 < p < 100 for p in running)
    assert running[1] - running[0] > running[len(running) // 2 + 1] - running[len(running) // 2]  # fast start
    assert seen[-1] == ("finished", 100)
    assert all(p == 0 for s, p in seen if s == "not_started")

    data = await status(client, task_id)
    assert data["error_message"] is None
    assert ISO_NO_TZ.match(data["finished_time"])
    [file] = data["files"]
    assert file["file_type"] == "image"
    match = FILE_URL.match(file["file_url"])
    assert match is not None
    assert match[1] == task_id


async def test_time_scale_and_duration_function(clock: FakeClock) -> None:
    models: list[str] = []

    def duration(model: str) -> float:
        models.append(model)
        return 60.0

    sim = Simulator(task_duration_seconds=duration, time_scale=30.0, clock=clock)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sim.app), base_url="http://sim") as c:
        task_id = await submit(c, video(model="veo-3.0-fast-generate-001"))
        clock.advance(1.9)
        assert (await status(c, task_id))["status"] == "running"
        clock.advance(0.1)
        assert (await status(c, task_id))["status"] == "finished"
    assert models == ["veo-3.0-fast-generate-001"]


async def test_the_fail_marker_fails_the_task_at_sixty_percent(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    task_id = await submit(client, video(prompt="a cat [fail] on a boat"))
    clock.advance(5.9)
    assert (await status(client, task_id))["status"] == "running"
    clock.advance(0.1)
    data = await status(client, task_id)

    assert data["status"] == "failed"
    assert "[fail]" in data["error_message"]
    assert "files" not in data
    assert ISO_NO_TZ.match(data["finished_time"])
    clock.advance(100)
    assert (await status(client, task_id))["status"] == "failed"


async def test_fail_next_tasks_fails_exactly_that_many(
    client: httpx2.AsyncClient, sim: Simulator, clock: FakeClock
) -> None:
    sim.fail_next_tasks(2, "Content blocked by safety filters")
    task_ids = [await submit(client) for _ in range(3)]
    clock.advance(10)
    results = [await status(client, task_id) for task_id in task_ids]

    assert [r["status"] for r in results] == ["failed", "failed", "finished"]
    assert [r["error_message"] for r in results] == [
        "Content blocked by safety filters",
        "Content blocked by safety filters",
        None,
    ]


async def test_finish_now_completes_a_task_at_once(client: httpx2.AsyncClient, sim: Simulator) -> None:
    task_id = await submit(client)
    assert (await status(client, task_id))["status"] == "not_started"
    sim.finish_now(task_id)
    data = await status(client, task_id)
    assert (data["status"], data["progress"]) == ("finished", 100)
    assert data["finished_time"] == data["created_time"]
    doomed = await submit(client, video(prompt="[fail]"))
    sim.finish_now(doomed)  # a doomed task ends failed, even when cut short
    assert (await status(client, doomed))["status"] == "failed"


async def test_an_unknown_task_is_404(client: httpx2.AsyncClient) -> None:
    response = await client.get(STATUS + "task_doesnotexist", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == envelope(404, "task not found", "not_found")


async def test_unknown_routes_and_wrong_methods(client: httpx2.AsyncClient, sim: Simulator) -> None:
    missing = await client.get("/api/v1/videos", headers=AUTH)
    wrong_method = await client.get(SUBMIT, headers=AUTH)
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, 405)
    assert [r.path for r in sim.received] == ["/api/v1/videos", SUBMIT]


async def test_injected_faults_hit_the_next_matching_requests(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.inject_fault(path_prefix=SUBMIT, method="post", status=429, times=2, retry_after="3")
    sim.inject_fault(path_prefix="/api/generate/", method="GET", status=502)

    first = await client.post(SUBMIT, json=video(), headers=AUTH)
    second = await client.post(SUBMIT, json=video(), headers=AUTH)
    task_id = await submit(client)
    broken = await client.get(STATUS + task_id, headers=AUTH)
    healed = await client.get(STATUS + task_id, headers=AUTH)

    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.json()["code"] == 429
        assert response.json()["error"]["type"] == "rate_limit_error"
    assert broken.status_code == 502
    assert broken.json()["error"]["type"] == "server_error"
    assert "retry-after" not in broken.headers
    assert healed.status_code == 200
    assert list(sim.tasks) == [task_id]  # the throttled submissions created nothing
    assert len(sim.requests_to(SUBMIT, "POST")) == 3


async def test_a_fault_can_carry_a_raw_body_or_just_slow_down(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.inject_fault(path_prefix=SUBMIT, status=502, body="<html>Bad Gateway</html>")
    proxy_page = await client.post(SUBMIT, json=video(), headers=AUTH)
    assert (proxy_page.status_code, proxy_page.text) == (502, "<html>Bad Gateway</html>")

    sim.inject_fault(path_prefix=SUBMIT, status=200, delay_seconds=0.05, retry_after="1")
    start = anyio.current_time()
    slow = await client.post(SUBMIT, json=video(), headers=AUTH)
    assert anyio.current_time() - start >= 0.04
    assert slow.status_code == 200
    assert slow.json()["data"]["task_id"] in sim.tasks
    assert slow.headers["retry-after"] == "1"

    # APIMP does not promise that the HTTP status equals `code`: a 200 can carry an error.
    lying = {"code": 500, "error": {"message": "upstream busy", "type": "server_error"}}
    sim.inject_fault(path_prefix=STATUS, status=200, body=lying)
    response = await client.get(STATUS + "task_any", headers=AUTH)
    assert (response.status_code, response.json()) == (200, lying)


async def test_the_result_file_is_a_public_signed_mp4_link(
    client: httpx2.AsyncClient, sim: Simulator, clock: FakeClock
) -> None:
    task_id = await submit(client)
    early = await client.get(f"/files/{task_id}.mp4")
    clock.advance(10)
    url = (await status(client, task_id))["files"][0]["file_url"]

    got = await client.get(url)  # no Authorization header: these links are public
    head = await client.head(url)
    forged = await client.get(url.split("?")[0] + "?token=0000")
    unknown = await client.get("/files/task_0123.mp4")
    sim.expire_files()
    expired = await client.get(url)

    assert early.status_code == 404
    assert got.status_code == 200
    assert got.headers["content-type"] == "video/mp4"
    assert int(got.headers["content-length"]) == len(got.content) == len(sample_video())
    assert got.content[4:8] == b"ftyp"
    assert (head.status_code, head.content, head.headers["content-length"]) == (
        200,
        b"",
        got.headers["content-length"],
    )
    assert (forged.status_code, unknown.status_code, expired.status_code) == (403, 404, 410)


async def test_every_request_is_recorded_before_it_is_judged(
    client: httpx2.AsyncClient, sim: Simulator
) -> None:
    sim.inject_fault(path_prefix=STATUS, status=500)
    await client.post(SUBMIT, json=video(), headers={"Authorization": "Bearer nope", "X-Trace": "1"})
    await client.post(SUBMIT, json={"model": "veo-3.1-generate-preview"}, headers=AUTH)
    await client.get(STATUS + "task_x", headers=AUTH)

    unauthorized, invalid, faulted = sim.received
    assert isinstance(unauthorized, ReceivedRequest)
    assert (unauthorized.method, unauthorized.path) == ("POST", SUBMIT)
    assert unauthorized.headers["authorization"] == "Bearer nope"
    assert unauthorized.headers["x-trace"] == "1"
    assert unauthorized.json() == video()
    assert invalid.json() == {"model": "veo-3.1-generate-preview"}
    assert (faulted.method, faulted.path, faulted.body) == ("GET", STATUS + "task_x", b"")
    assert sim.requests_to(SUBMIT) == [unauthorized, invalid]
    assert sim.requests_to("/api/", method="get") == [faulted]


def test_the_bundled_sample_is_a_small_mp4() -> None:
    data = (files("apimp_video_mcp.simulator") / "assets" / "sample.mp4").read_bytes()
    assert data == sample_video()
    assert data[4:8] == b"ftyp"
    assert b"avc1" in data[:64]
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while downloading
    assert 2_000 < len(data) < 40_000


def test_veo_like_durations_are_plausible() -> None:
    rng = random.Random(7)
    for model, low, high in [("veo-3.0-fast-generate-001", 30, 90), ("veo-3.1-generate-preview", 60, 360)]:
        samples = [veo_like_duration(model, rng) for _ in range(200)]
        assert all(low <= s <= high for s in samples)
