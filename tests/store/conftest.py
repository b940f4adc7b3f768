"""The store tests' fixtures: each test runs once per backend."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the journal lives: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path_factory.mktemp("store") / "journal.sqlite3")
    url: str = request.getfixturevalue("postgres_url")
    return url
