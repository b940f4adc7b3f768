"""The store tests' fixtures: each test runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apimp_video_mcp.store import TaskStore, task_store_for


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the journal lives: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path_factory.mktemp("store") / "journal.sqlite3")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def journal(location: str) -> AsyncIterator[TaskStore]:
    """A store at that location, closed after the test."""
    opened = task_store_for(location)
    yield opened
    await opened.close()
