"""A `VideoService` as the tests use it: the plain service over the upstream the settings name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2

from apimp_video_mcp.config import Settings
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.store import TaskStore
from apimp_video_mcp.upstream.client import ApimpClient


@asynccontextmanager
async def running_service(settings: Settings, journal: TaskStore) -> AsyncIterator[VideoService]:
    """The service over its own HTTP client to `settings.base_url` and `journal`, running (pollers,
    retries, saves) for the block. The journal stays open: whoever opened it closes it."""
    async with httpx2.AsyncClient(base_url=settings.base_url) as http:
        service = VideoService(settings, ApimpClient(lambda: http, settings.require_api_key), journal)
        async with service.running():
            yield service
