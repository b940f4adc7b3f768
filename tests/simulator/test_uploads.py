"""The simulator's upload endpoints against the documented contract, in process and with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator
from tests.support.clock import FakeClock
from tests.support.uploads import PNG

pytestmark = pytest.mark.anyio

UPLOAD = "/api/common/upload/stream"
AUTH = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}


@pytest.fixture
async def sim_http(clock: FakeClock) -> AsyncIterator[tuple[Simulator, httpx2.AsyncClient]]:
    sim = Simulator(clock=clock, seed=3)
    transport = httpx2.ASGITransport(app=sim.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sim") as http:
        yield sim, http


async def test_the_simulated_stream_upload_answers_the_documented_envelope(
    sim_http: tuple[Simulator, httpx2.AsyncClient], clock: FakeClock
) -> None:
    sim, http = sim_http

    response = await http.post(
        UPLOAD,
        files={"file": ("frame.png", PNG, "image/png")},
        data={"upload_path": "frames/day1"},
        headers=AUTH,
    )

    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["success"] is True
    assert envelope["code"] == 200
    data = envelope["data"]
    assert data["original_name"] == "frame.png"
    assert data["file_size"] == len(PNG)
    assert data["mime_type"] == "image/png"
    assert data["upload_path"] == "temp/frames/day1"
    assert data["file_name"] == f"{data['file_id']}.png"
    uploaded, expires = (
        datetime.fromisoformat(data["upload_time"]),
        datetime.fromisoformat(data["expires_at"]),
    )
    assert expires - uploaded == timedelta(hours=72)
    served = await http.get(data["file_url"])
    assert served.content == PNG
    download = await http.get(data["download_url"])
    assert "attachment" in download.headers["content-disposition"]
    assert (await http.head(data["file_url"])).headers["content-length"] == str(len(PNG))
    [received] = sim.requests_to(UPLOAD)
    assert PNG in received.body
    clock.advance(72 * 3600)
    assert (await http.get(data["file_url"])).status_code == 410


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        (
            {"files": {"file": ("a.png", PNG)}, "data": {"upload_path": "../escape"}},
            400,
            "Invalid upload path",
        ),
        ({"files": {"file": ("a.png", b"")}}, 400, "Invalid file data"),
        ({"data": {"upload_path": "x"}}, 422, None),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
            400,
            "Invalid file data",
        ),
    ],
)
async def test_the_simulated_stream_upload_refuses_bad_requests_with_detail(
    sim_http: tuple[Simulator, httpx2.AsyncClient], kwargs: dict[str, Any], status: int, detail: str | None
) -> None:
    _, http = sim_http
    headers = {**AUTH, **kwargs.pop("headers", {})}

    response = await http.post(UPLOAD, headers=headers, **kwargs)

    assert response.status_code == status
    assert "detail" in response.json()
    if detail is not None:
        assert detail in response.json()["detail"]
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "file"]


async def test_the_simulated_upload_endpoints_need_the_key(
    sim_http: tuple[Simulator, httpx2.AsyncClient],
) -> None:
    _, http = sim_http

    stream = await http.post(UPLOAD, files={"file": ("a.png", PNG)})
    by_url = await http.post("/api/common/upload/url", json={"file_url": "https://x/a.png"})

    assert stream.status_code == by_url.status_code == 401
    assert stream.json() == {"detail": "Invalid API key"}


async def test_the_simulated_url_upload_fetches_and_stores_the_file(
    sim_http: tuple[Simulator, httpx2.AsyncClient],
) -> None:
    sim, http = sim_http
    first = (await http.post(UPLOAD, files={"file": ("a.png", PNG, "image/png")}, headers=AUTH)).json()[
        "data"
    ]

    response = await http.post(
        "/api/common/upload/url", json={"file_url": first["file_url"], "upload_path": "copies"}, headers=AUTH
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["file_id"] != first["file_id"]
    assert data["upload_path"] == "temp/copies"
    assert data["mime_type"] == "image/png"
    assert (await http.get(data["file_url"])).content == PNG
    assert len(sim.uploads.files) == 2


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"file_url": "ftp://example.com/a.png"}, 400),
        ({"file_url": "http://sim/uploads/0123abcd/missing.png"}, 400),
        ({"file_url": "http://127.0.0.1:9/unreachable.png"}, 400),
        ({"upload_path": "x"}, 422),
    ],
)
async def test_the_simulated_url_upload_refuses_what_it_cannot_fetch(
    sim_http: tuple[Simulator, httpx2.AsyncClient], payload: dict[str, Any], status: int
) -> None:
    _, http = sim_http

    response = await http.post("/api/common/upload/url", json=payload, headers=AUTH)

    assert response.status_code == status
    assert "detail" in response.json()


async def test_the_simulated_url_upload_fetches_from_another_host(tmp_path: Path) -> None:
    origin, gateway = Simulator(seed=1), Simulator(seed=2)
    async with (
        running_simulator(origin) as origin_url,
        running_simulator(gateway) as gateway_url,
        httpx2.AsyncClient() as http,
    ):
        stored = await http.post(
            f"{origin_url}{UPLOAD}", files={"file": ("frame", PNG, "application/octet-stream")}, headers=AUTH
        )
        response = await http.post(
            f"{gateway_url}/api/common/upload/url",
            json={"file_url": stored.json()["data"]["file_url"]},
            headers=AUTH,
        )
        broken = await http.post(f"{gateway_url}/api/common/upload/url", content=b"{not json", headers=AUTH)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["file_size"] == len(PNG)
    assert data["file_url"].startswith(gateway_url)
    assert [file.content for file in gateway.uploads.files.values()] == [PNG]
    assert broken.status_code == 400
    assert broken.json() == {"detail": "Invalid JSON body"}
