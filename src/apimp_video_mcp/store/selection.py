"""Which store APIMP_JOURNAL names: a PostgreSQL URL for a cluster, else an SQLite file.

The PostgreSQL backend (and psycopg) is imported only when a URL asks for it, so a desktop
server never loads it and starts as fast as before.
"""

from __future__ import annotations

from typing import Final

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.store.interface import TaskStore
from apimp_video_mcp.store.sqlite import SqliteTaskStore

POSTGRES_URL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(location: str) -> bool:
    return location.startswith(POSTGRES_URL_SCHEMES)


def task_store_for(location: str, *, pool_size: int = defaults.POSTGRES_POOL_MAX_CONNECTIONS) -> TaskStore:
    """The store for a journal location; it connects on first use (a PostgreSQL one with a pool of
    at most `pool_size` connections)."""
    if is_postgres_url(location):
        try:
            from apimp_video_mcp.store.postgres import PostgresTaskStore
        except ImportError:
            raise ConfigurationError(
                "APIMP_JOURNAL names a PostgreSQL database, which needs psycopg: install "
                "apimp-video-mcp[postgresql] (pip install 'apimp-video-mcp[postgresql]')."
            ) from None
        return PostgresTaskStore(location, max_connections=pool_size)
    return SqliteTaskStore(location)
